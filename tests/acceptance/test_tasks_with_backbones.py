"""Every built-in pretext task with every kind of backbone, at 32 px and above."""

import pytest
import torch

from sslbench._core.plugins import PluginHost
from sslbench._core.seeding import make_generator

PRETEXT = ["rotation", "exemplar", "jigsaw", "relpatch"]


@pytest.mark.parametrize("task_name", PRETEXT)
@pytest.mark.parametrize("backbone_name, resolution", [("smallcnn", 32), ("smallcnn", 64),
                                                       ("resnet18", 32)])
def test_task_backbone_resolution(task_name, backbone_name, resolution):
    host = PluginHost.from_environment()
    options = {"permutations": 10} if task_name == "jigsaw" else {}
    task = host.task(task_name)(**options)
    backbone = host.backbone(backbone_name).create(resolution)
    gen = make_generator(0, "t")
    pool = task.prepare(torch.randint(0, 256, (6, 3, resolution, resolution),
                                      dtype=torch.uint8), gen)
    head = task.build_head(backbone)
    kwargs = {"index": torch.arange(2)} if task.uses_index else {}
    step = task.pretext_loss(backbone, head, pool[:2].float() / 255, gen, **kwargs)
    step.loss.backward()
    assert torch.isfinite(step.loss)
    assert step.targets.min() >= 0 and step.targets.max() < step.logits.shape[1]


def test_task_options_reach_the_record(fast_run, tmp_path):
    import json
    status, _, err = fast_run("--tasks", "jigsaw", "--fractions", "1.0", "--protocols", "linear",
                              "--resolution", "24", "--task-opt", "jigsaw.permutations=12",
                              "--task-opt", "jigsaw.selection=maximin")
    assert status == 0, err
    rec = json.loads(next((tmp_path / "results" / "records").glob("*jigsaw*")).read_text())
    assert rec["task_plan"]["pretext"]["options"]["permutations"] == 12
    assert rec["task_plan"]["pretext"]["hamming_distance"]["minimum"] >= 6


@pytest.mark.parametrize("task_name", PRETEXT + ["uda"])
def test_show_draws_a_preview(cli, tmp_path, task_name):
    out = tmp_path / f"{task_name}.png"
    status, stdout, err = cli("show", task_name, "--count", "2", "--resolution", "32",
                              "--task-opt", "jigsaw.permutations=10", "-o", str(out))
    assert status == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 2000


def test_a_resolution_too_small_for_jigsaw_is_refused_before_anything_runs(fast_run, tmp_path):
    status, _, err = fast_run("--tasks", "jigsaw", "--resolution", "16")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "jigsaw at 16 px" in err and "--resolution 21" in err
    assert not (tmp_path / "results" / "records").exists()


def test_show_of_a_task_without_preview_is_bad_input(cli, tmp_path):
    from conftest import NAN_TASK
    plugin = tmp_path / "exploding.py"
    plugin.write_text(NAN_TASK)
    status, _, err = cli("show", "exploding", "--plugin", str(plugin), "-o", str(tmp_path / "x.png"))
    assert status == 2 and "task 'exploding' has no preview" in err
