"""Does each pretext task learn at the quick preset? Pretrain it on the flowers pool at 32 px
(15 epochs, the quick preset's settings and the task's defaults) and measure its pretext
accuracy on held-out pool images against chance (``sslbench.training.evaluate_pretext``).

The assertion is issue 10's: exemplar's quick preset (1,000 surrogate classes) reaches a
pretext accuracy well above chance, here more than 20 times chance and a held-out loss below
90% of the targets' entropy. Rotation is measured beside it for scale. Skipped without the
flowers set (random images have nothing to learn)."""

from __future__ import annotations

import pytest
import torch
from conftest import FIGURES, FLOWERS

from sslbench_plugins.presets import QUICK
from sslbench.data import make_splits
from sslbench.images import ResidentImages
from sslbench._core.progress import Reporter
from sslbench._core.pretraining import evaluate_pretext, pretrain

pytestmark = pytest.mark.skipif(not FLOWERS.is_dir(), reason=f"flowers not found at {FLOWERS}")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pool(flowers32):
    images, labels, _ = flowers32
    from sslbench.data import ImageData
    data = ImageData("flowers", [str(i) for i in range(5)], images, labels, images[:10],
                     labels[:10])
    splits = make_splits(data, "labeled", 0.1, QUICK.resolved_settings()["pretext_holdout"], 0)
    seen = torch.from_numpy(splits.pretraining_index)
    held = torch.from_numpy(splits.holdout)
    return images[seen], images[held]


@pytest.mark.parametrize("task_name", ["exemplar", "rotation"])
def test_quick_preset_learns_its_pretext_task(benchmark, pool, task_name):
    from sslbench._core.plugins import PluginHost
    from sslbench_plugins.backbones.smallcnn import SmallCNN
    train, held = pool
    task = PluginHost.from_environment().task(task_name)()
    result = {}

    def run():
        torch.manual_seed(0)
        backbone = SmallCNN()
        x = train.float().div(255)
        backbone.set_input_stats(x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)))
        out = pretrain(task, backbone, train, QUICK.resolved_settings(), CPU, None, 0, Reporter(),
                       task_name)
        images, uses_index = task.evaluation_images(ResidentImages(held), out["prepared"])
        result.update(evaluate_pretext(task, backbone, out["head"], images, uses_index, CPU,
                                       None, 0))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({k: result[k] for k in ("accuracy", "chance", "loss", "entropy")})
    FIGURES[f"pretext_{task_name}"] = result["accuracy"]
    if task_name == "exemplar":
        assert result["accuracy"] > 20 * result["chance"]
        assert not result["near_chance"]
