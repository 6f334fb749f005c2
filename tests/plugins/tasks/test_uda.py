import json
import math

import pytest
import torch
from sslbench_plugins.tasks.uda import UDA, consistency_loss, sharpen, tsa_threshold

from sslbench.errors import SSLBenchError
from sslbench.randaugment import rand_augment
from sslbench._core.seeding import make_generator


def test_sharpening_with_temperature():
    p = sharpen(torch.tensor([[0.0, math.log(2.0)]]), temperature=0.5)
    # softmax([0, 2 ln 2]) = [1, 4] / 5
    assert torch.allclose(p, torch.tensor([[0.2, 0.8]]))


def test_confidence_mask_and_kl():
    clean = torch.tensor([[0.0, 3.0], [0.0, 0.1]])         # confident, unsure
    loss, mask = consistency_loss(clean, torch.zeros(2, 2), temperature=1.0, threshold=0.8)
    assert mask.tolist() == [1.0, 0.0]
    p = torch.softmax(clean[0], -1)
    kl = (p * (p.log() - math.log(0.5))).sum()
    assert loss.item() == pytest.approx(kl.item() / 2)     # averaged over the whole batch


@pytest.mark.parametrize("schedule, half, end", [
    ("linear", 0.5, 1.0), ("log", 1 - math.exp(-2.5), 1 - math.exp(-5)),
    ("exp", math.exp(-2.5), 1.0), ("none", 1.0, 1.0)])
def test_tsa_schedules(schedule, half, end):
    k = 10
    assert tsa_threshold(schedule, 50, 100, k) == pytest.approx(half * (1 - 1 / k) + 1 / k)
    assert tsa_threshold(schedule, 100, 100, k) == pytest.approx(end * (1 - 1 / k) + 1 / k)
    assert tsa_threshold(schedule, 0, 100, k) <= tsa_threshold(schedule, 50, 100, k)


def test_tsa_removes_confident_labeled_examples():
    from sslbench.task import ConsistencyContext
    ctx = ConsistencyContext(None, None, None, step=0, total_steps=100, num_classes=2,
                             generator=None)
    logits = torch.tensor([[5.0, 0.0], [0.0, 0.1]])        # first is already confident
    labels = torch.tensor([0, 0])
    loss = UDA(tsa="linear").supervised_loss(logits, labels, ctx)
    expected = torch.nn.functional.cross_entropy(logits[1:], labels[1:])
    assert loss.item() == pytest.approx(expected.item())


def test_unknown_schedule_is_bad_input():
    with pytest.raises(SSLBenchError, match="uda.tsa must be one of"):
        UDA(tsa="cosine")


def test_randaugment_draws_per_image():
    x = torch.rand(1, 3, 16, 16).expand(32, 3, 16, 16).contiguous()
    y = rand_augment(x, make_generator(0, "ra"))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    distinct = {tuple(v.flatten()[:20].round(decimals=4).tolist()) for v in y}
    assert len(distinct) > 8                     # not one draw for the whole batch


def test_rotation_plus_uda_trains_both_stages(fast_run, tmp_path):
    status, out, err = fast_run("--tasks", "rotation+uda,uda", "--fractions", "0.5",
                                "--task-opt", "uda.ratio=2")
    assert status == 0, err
    records = {p.stem: json.loads(p.read_text())
               for p in (tmp_path / "results" / "records").glob("*.json")}
    combo = records["digits__smallcnn__rotation+uda__finetune__f0.5__s0"]
    assert combo["pretraining"]["history"]                # rotation was pretrained
    assert combo["task_plan"]["consistency"][0]["options"]["ratio"] == 2
    assert records["digits__smallcnn__uda__finetune__f0.5__s0"]["pretraining"] is None
    assert not any("uda__linear" in k for k in records)   # no linear cell: "n/a"
    row = next(line for line in out.splitlines() if line.startswith("│ uda "))
    assert "n/a" in row


def test_recipes_credit_their_sources_and_options_override_them():
    assert {k: UDA().options[k] for k in ("ratio", "temperature", "threshold", "tsa")} == \
        {"ratio": 7, "temperature": 0.4, "threshold": 0.8, "tsa": "none"}        # USB's yaml
    gpu = UDA(recipe="uda-gpu").options                   # run_cifar10_gpu.sh + main.py
    assert (gpu["ratio"], gpu["temperature"], gpu["threshold"], gpu["tsa"]) == (5, 1.0, 0.0, "none")
    tpu = UDA(recipe="uda-tpu", ratio=10).options         # run_cifar10_tpu_32_core.sh
    assert (tpu["ratio"], tpu["tsa"]) == (10, "linear")
    with pytest.raises(SSLBenchError, match="uda.recipe"):
        UDA(recipe="fixmatch")


def test_cutout_paints_a_clipped_square():
    from sslbench.randaugment import cutout
    x = torch.zeros(2000, 3, 32, 32)
    out = cutout(x, 0.5, make_generator(0, "c"), 1.0)
    area = out[:, 0].flatten(1).mean(1)
    # a 16 px square centred anywhere: at most a quarter of the image, less near the border
    assert area.max() <= 0.25 + 1e-6 and 0.12 < area.mean() < 0.2
    assert torch.equal(out[:, 0], out[:, 2])


def test_uda_randaugment_translates_at_most_10_px_at_32():
    from sslbench.randaugment import UDA_OPS
    assert "invert" in UDA_OPS and "cutout" in UDA_OPS and "identity" not in UDA_OPS
    # a one-pixel-wide bright column moves by at most 10 px under translate_x (the space it
    # leaves is filled with grey, as UDA fills with the data set's mean)
    x = torch.zeros(512, 3, 32, 32)
    x[..., 16] = 1.0
    y = rand_augment(x, make_generator(0, "t"), num_ops=1, policy="uda")
    profile = y.mean(dim=(1, 2))                               # (N, 32) column brightness
    upright = (y[:, 0] == y[:, 0, :1]).all(1).all(1)            # still a vertical line
    others = ((profile < 0.1) | ((profile - 0.5).abs() < 0.01)).sum(1) == 31
    single = ((profile > 0.9).sum(1) == 1) & others
    moved = (profile.argmax(1) - 16)[upright & single]
    assert moved.abs().max() <= 10 and moved.abs().max() >= 5


def test_labeled_and_both_unlabeled_views_share_one_batchnorm_batch():
    """As in UDA's main.py, the labeled batch, the weak and the strong unlabeled views go
    through the network together: batch normalisation sees one batch of l + 2u images."""
    from sslbench_plugins.backbones.smallcnn import SmallCNN
    from sslbench_plugins.protocols.finetune import FineTune

    from sslbench_plugins.presets import QUICK
    from sslbench.images import ResidentImages
    from sslbench._core.progress import Reporter
    from sslbench.protocol import EvalContext, Split

    images = torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8)
    labels = torch.arange(40) % 4
    settings = QUICK.resolved_settings()
    backbone = SmallCNN()
    seen = []
    bn = next(m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.register_forward_pre_hook(lambda m, a: seen.append((m.training, a[0].shape[0])))
    split = Split("labeled", ResidentImages(images[:24]), labels[:24], lambda: None)
    val = Split("val", ResidentImages(images[24:]), labels[24:], lambda: None)
    ctx = EvalContext(backbone=backbone, labeled=split, val=val,
                      unlabeled=ResidentImages(images), num_classes=4,
                      consistency_tasks=[UDA(ratio=3)], settings=settings,
                      device=torch.device("cpu"), autocast_dtype=None, seed=0,
                      reporter=Reporter())
    result = FineTune(steps=5, evals=1, batch_size=8).evaluate(ctx)
    training = [n for mode, n in seen if mode]
    assert training == [8 + 2 * 3 * 8] * 5               # one forward per step, l + 2u images
    assert all("mask_rate" in point for point in result.details["curve"])
