"""The nonlinear protocol (sslbench_plugins.protocols.nonlinear): RotNet's conv and MLP
classifiers on a stage's frozen feature maps, their choices on validation, and the rule
fixed in advance when there is no validation image."""

import types

import pytest
import torch

from sslbench._core.progress import Reporter
from sslbench.protocol import EvalContext, Split
from sslbench_plugins.protocols.nonlinear import NonLinearProbe, conv_head, mlp_head

PATTERNS = 3


def textures(n_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 8, 6, 6) maps: class 0 vertical stripes, 1 horizontal stripes, 2 a checkerboard,
    each at a random phase with noise. Every class has the same mean in every channel, so
    globally pooled features carry no class: only a classifier that reads the maps can."""
    g = torch.Generator().manual_seed(seed)
    i, j = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    maps, labels = [], []
    for c, pattern in enumerate((j % 2, i % 2, (i + j) % 2)):
        for _ in range(n_per_class):
            phase = int(torch.randint(2, (1,), generator=g))
            base = ((pattern + phase) % 2).float() * 2 - 1
            maps.append(base.expand(8, 6, 6) + 0.3 * torch.randn(8, 6, 6, generator=g))
            labels.append(c)
    return torch.stack(maps), torch.tensor(labels)


def split(name, maps, labels):
    """A split whose stage 2 maps are ``maps`` (stage 1 is never asked for)."""
    def stage_maps(stage):
        assert stage == 2, stage
        return maps
    return Split(name, images=None, labels=labels,
                 features=lambda: [maps.mean(dim=(2, 3))], maps=stage_maps)


def context(train, val, seed=0):
    return EvalContext(
        backbone=types.SimpleNamespace(stage_dims=[4, 8]), labeled=split("labeled", *train),
        val=split("val", *val), unlabeled=None, num_classes=PATTERNS, consistency_tasks=[],
        settings={}, device=torch.device("cpu"), autocast_dtype=None, seed=seed,
        reporter=Reporter())


def probe(**options):
    return NonLinearProbe(**{"stages": [2], "epochs": 6, "epoch_size": 256, "width": 16,
                             "augment": False, **options})


@pytest.mark.parametrize("head", ["conv", "mlp"])
def test_each_head_reads_the_maps_where_pooled_features_carry_nothing(head):
    train, val, test = textures(20, 0), textures(5, 1), textures(30, 2)
    pooled = train[0].mean(dim=(2, 3))
    # the pooled features of the three classes are alike (the premise of the test)
    means = torch.stack([pooled[train[1] == c].mean(0) for c in range(PATTERNS)])
    assert (means - means.mean(0)).abs().max() < 0.1
    result = probe(head=head).evaluate(context(train, val))
    accuracy = float((result.predict(split("test", *test)) == test[1]).float().mean())
    assert accuracy > 0.9, accuracy
    d = result.details
    assert d["chosen_on"] == "validation" and d["chosen_stage"] == 2
    assert 1 <= d["chosen_epoch"] <= 6 and d["head"] == head
    assert result.val_accuracy == max(s["val_accuracy"] for s in d["stages"])


def test_without_validation_images_the_last_epoch_is_kept_as_fixed_in_advance():
    train, test = textures(1, 0), textures(10, 2)          # one label per class
    empty = (torch.zeros(0, 8, 6, 6), torch.zeros(0, dtype=torch.int64))
    result = probe(stages=[2, 1], epoch_size=24).evaluate(context(train, empty))
    assert result.val_accuracy is None
    assert result.details["chosen_on"] == "preset"
    assert result.details["chosen_stage"] == 2 and result.details["chosen_epoch"] == 6
    assert "no validation image" in result.details["chosen"]
    assert result.predict(split("test", *test)).shape == (30,)


def test_the_same_seed_gives_the_same_head_and_another_seed_another():
    train, val = textures(10, 0), textures(3, 1)
    runs = [probe(head="mlp", epochs=2).evaluate(context(train, val, seed))
            for seed in (0, 0, 1)]
    logits = [r.details["stages"][0]["final_loss"] for r in runs]
    assert logits[0] == logits[1] and logits[0] != logits[2]


def test_heads_are_the_authors_architectures():
    conv = conv_head(192, 192, 10)
    kinds = [type(m).__name__ for m in conv]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU"] * 3 + ["AdaptiveAvgPool2d", "Flatten",
                                                              "Linear"]
    assert [m.kernel_size for m in conv if isinstance(m, torch.nn.Conv2d)] == \
        [(3, 3), (1, 1), (1, 1)]
    assert conv(torch.zeros(2, 192, 8, 8)).shape == (2, 10)
    mlp = mlp_head(192 * 8 * 8, 10)
    linears = [m for m in mlp if isinstance(m, torch.nn.Linear)]
    # MultLayer: min(20 x classes, 2048) = 200 units, bias-free hidden layers
    assert [(m.in_features, m.out_features, m.bias is not None) for m in linears] == \
        [(12288, 200, False), (200, 200, False), (200, 10, True)]


def test_a_stage_the_backbone_lacks_fails_the_cell_with_its_reason():
    train, val = textures(2, 0), textures(1, 1)
    with pytest.raises(ValueError, match="stage 3 of a backbone with 2 stages"):
        probe(stages=[3]).evaluate(context(train, val))


def test_a_stage_the_backbone_lacks_is_one_line_before_anything_runs(cli, tmp_path):
    status, _, err = cli("run", "--protocols", "nonlinear", "--opt", "nonlinear.stages=[2,9]",
                         "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert status == 2, err
    assert err.strip().splitlines() == [
        "sslbench: error: protocol option nonlinear.stages must be stages of backbone "
        "'smallcnn' (1 to 4), got [2, 9]"]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out" / "records").exists()


def test_with_augment_each_batch_goes_cropped_and_flipped_through_the_frozen_network():
    """The authors' loader: every training batch is cropped and flipped before the frozen
    network, so the head never sees the same maps twice; the network itself is not
    trained."""
    from sslbench.images import ResidentImages
    from sslbench_plugins.backbones.smallcnn import SmallCNN
    torch.manual_seed(0)
    backbone = SmallCNN((4, 8))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    images = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8)
    labels = torch.arange(3).repeat(4)

    def split(name, idx):
        x = ResidentImages(images[idx])
        maps = lambda stage: backbone.stage_maps(backbone.normalise(x.tensor.float() / 255))[
            stage - 1].detach()   # noqa: E731
        return Split(name, images=x, labels=labels[idx], features=None, maps=maps)

    ctx = EvalContext(backbone=backbone, labeled=split("labeled", torch.arange(9)),
                      val=split("val", torch.arange(9, 12)), unlabeled=None, num_classes=3,
                      consistency_tasks=[], settings={}, device=torch.device("cpu"),
                      autocast_dtype=None, seed=0, reporter=Reporter())
    protocol = probe(augment=True, epochs=2, epoch_size=18)
    idx = torch.arange(9)
    [(_, first), (_, second)] = list(protocol._epoch_maps(ctx, 2)([idx, idx]))
    cached = ctx.labeled.stage_maps(2)
    assert first.shape == cached.shape == (9, 8, 8, 8)
    assert not torch.equal(first, second) and not torch.equal(first, cached)
    result = protocol.evaluate(ctx)
    assert result.details["chosen_on"] == "validation"
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert "cropped and flipped" in protocol.summary()


def test_streamed_images_train_the_same_head_with_one_loader_an_epoch(monkeypatch):
    """Augmented training on streamed images (a DataLoader over the labeled set) draws the
    same crops and flips and trains the same head as on resident ones, and starts the loader
    once an epoch (and once for the maps' shape), not once a step."""
    from sslbench.images import ResidentImages, StreamedImages, TensorSource
    from sslbench_plugins.backbones.smallcnn import SmallCNN
    images = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    labels = torch.arange(3).repeat(4)
    loaders = []
    streamed_batches = StreamedImages.batches

    def counted(self, index_batches):
        loaders.append(1)
        return streamed_batches(self, index_batches)
    monkeypatch.setattr(StreamedImages, "batches", counted)

    def run(streamed: bool):
        torch.manual_seed(0)
        backbone = SmallCNN((4, 8))

        def split(name, idx):
            x = images[idx]
            held = (StreamedImages(TensorSource(x), torch.device("cpu"), workers=0)
                    if streamed else ResidentImages(x))
            maps = lambda stage: backbone.stage_maps(backbone.normalise(x.float() / 255))[
                stage - 1].detach()   # noqa: E731
            return Split(name, images=held, labels=labels[idx], features=None, maps=maps)
        ctx = EvalContext(backbone=backbone, labeled=split("labeled", torch.arange(9)),
                          val=split("val", torch.arange(9, 12)), unlabeled=None,
                          num_classes=3, consistency_tasks=[], settings={},
                          device=torch.device("cpu"), autocast_dtype=None, seed=0,
                          reporter=Reporter())
        result = probe(augment=True, epochs=3, epoch_size=18, batch_size=4).evaluate(ctx)
        return result.predict(ctx.val), result.details
    resident, streamed = run(False), run(True)
    assert torch.equal(resident[0], streamed[0])
    same = lambda details: [{k: v for k, v in fit.items() if k != "seconds"}  # noqa: E731
                            for fit in details["stages"]]
    assert same(resident[1]) == same(streamed[1])       # epoch chosen, its accuracy, loss
    assert len(loaders) == 3 + 1            # 3 epochs of 5 steps, and the shape


def test_the_dry_run_counts_the_frozen_networks_forward_passes():
    plain = probe(stages=[2, 3], epochs=4, epoch_size=100).work(50, 10, 200)
    augmented = probe(stages=[2], epochs=4, epoch_size=100, augment=True).work(50, 10, 200)
    assert (plain.train, plain.predict) == (0, 2 * (50 + 10) + 200)
    assert augmented.predict == 4 * 100 + 10 + 200
