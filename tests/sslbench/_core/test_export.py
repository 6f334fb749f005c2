"""``sslbench export`` (sslbench._core.export): a pretrained backbone out of the cache as
safetensors and a JSON, loaded back with ``sslbench.load_backbone`` and, for a timm backbone,
with plain timm; the features match the sweep's checkpoint."""

import json

import pytest
import torch
from safetensors.torch import load_file

import sslbench
from sslbench._core.checkpoints import CheckpointStore
from sslbench._core.export import adapt_timm_stem, describe, export_backbone
from sslbench._core.plugins import PluginHost


def images(resolution, n=4):
    return torch.rand(n, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))


def sweep_backbone(record, cache):
    """The backbone exactly as the sweep's checkpoint holds it."""
    host = PluginHost.from_environment()
    spec = host.backbone(record["backbone"])
    backbone = spec.build(record["settings"]["resolution"], record["options"]["backbone"])
    state, _ = CheckpointStore(cache, print).load(record["pretraining"]["checkpoint"])
    backbone.load_state_dict(state)
    return backbone.eval()


def test_a_rotation_checkpoint_round_trips_with_its_features_and_errors_are_one_line(
        cli, finished_sweep, tmp_path):
    results_dir, cache = finished_sweep
    out = tmp_path / "export" / "rotation-s1.safetensors"
    status, text, err = cli("export", str(results_dir), "--task", "rotation",
                            "--seed", "1", "--cache-dir", str(cache), "-o", str(out))
    assert status == 0, err
    assert "wrote" in text and out.is_file() and out.with_suffix(".json").is_file()
    meta = json.loads(out.with_suffix(".json").read_text())
    record = json.loads(next((results_dir / "records").glob(
        "*rotation__linear*s1.json")).read_text())
    assert (meta["task"], meta["seed"], meta["backbone"], meta["resolution"]) == (
        "rotation", 1, "smallcnn", 16)
    same_checkpoint = {json.loads(p.read_text())["cell_id"]
                       for p in (results_dir / "records").glob("*rotation__linear*s1.json")}
    assert len(same_checkpoint) == 2                 # 50% and 100%: one pretraining
    assert meta["record"] in same_checkpoint and meta["keys"] == "sslbench"
    assert meta["checkpoint"] == record["pretraining"]["checkpoint"]
    loaded = sslbench.load_backbone(out)
    reference = sweep_backbone(record, cache)
    x = images(16)
    for a, b in zip(loaded.forward_stages(x), reference.forward_stages(x)):
        assert torch.equal(a, b)
    # the file holds tensors only, under the backbone's own names
    assert set(load_file(str(out))) == set(reference.state_dict())
    # what cannot be exported is one line, exit 2
    results, out = str(results_dir), str(tmp_path / "x.safetensors")
    cases = [((results, "--task", "rotation"), "2 checkpoints match"),
             ((results, "--task", "scratch"), "no pretrained checkpoint"),
             ((results, "--task", "jigsaw"), "unknown task 'jigsaw'; known tasks: rotation, scratch"),
             ((results, "--task", "rotation", "--seed", "7"), "no record in"),
             ((str(tmp_path / "nowhere"),), "neither a record file nor a results folder"),
             ((results, "--task", "rotation", "--seed", "0", "--keys", "timm"),
              "not a timm model")]
    for args, message in cases:
        status, _, err = cli("export", *args, "--cache-dir", str(cache), "-o", out)
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    status, _, err = cli("export", results, "--task", "rotation", "--seed", "0",
                         "--cache-dir", str(tmp_path / "elsewhere"), "-o", out)
    assert status == 2 and "is not in" in err and "rerunning the sweep" in err


def fake_record(name, resolution):
    return {"backbone": name, "options": {"backbone": {}, "tasks": {"rotation": {}}},
            "settings": {"resolution": resolution}, "task": "rotation", "task_plan": "rotation",
            "dataset": "digits", "seed": 0, "cell_id": "digits__x__rotation__linear__f1__s0",
            "pretraining": {"checkpoint": "rotation-0123", "seconds": 1.0}, "plugins": {}}


@pytest.mark.parametrize("resolution", [32, 72])
def test_a_timm_backbone_loads_with_plain_timm(tmp_path, resolution):
    """At 32 px the stem was adapted (the JSON's lines give timm's model that stem); at 72 px
    it is timm's own, and timm's pretrained-file loading takes the export as it is."""
    import timm
    host = PluginHost.from_environment()
    backbone = host.backbone("resnet18").build(resolution)
    backbone.set_input_stats(torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3]))
    with torch.no_grad():                       # weights unlike a fresh model's
        for p in backbone.parameters():
            p.add_(0.01 * torch.randn_like(p))
    backbone.eval()
    meta = describe(fake_record("resnet18", resolution), backbone)
    out, meta_path = export_backbone(backbone, meta, tmp_path / "r18.safetensors")
    meta = json.loads(meta_path.read_text())
    assert meta["keys"] == "timm" and meta["timm"]["model"] == "resnet18"
    if resolution <= 64:
        assert meta["timm"]["stem_lines"]
        model = timm.create_model("resnet18", num_classes=0)
        adapt_timm_stem(model)
        model.load_state_dict(load_file(str(out)))
    else:
        assert not meta["timm"]["stem_lines"]
        model = timm.create_model("resnet18", pretrained=True, num_classes=0,
                                  pretrained_cfg_overlay=dict(file=str(out)))
    model.eval()
    x = images(resolution)
    mean = torch.tensor(meta["input_mean"]).view(1, 3, 1, 1)
    std = torch.tensor(meta["input_std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        theirs = model((x - mean) / std)                      # timm's pooled features
        ours = backbone(x)
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-5)
    # and back into sslbench
    again = sslbench.load_backbone(out)
    with torch.no_grad():
        torch.testing.assert_close(again(x), ours, rtol=1e-5, atol=1e-6)
