import json
import math

import pytest
import torch
from conftest import FAST
from sslbench_plugins.tasks.uda import UDA, consistency_loss, sharpen, tsa_threshold

from sslbench.errors import SSLBenchError
from sslbench.randaugment import rand_augment
from sslbench.seeding import make_generator


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
