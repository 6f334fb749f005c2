"""Options for every plugin kind, declared the same way (``defaults``, per-preset
``presets``), set with one flag (``--opt NAME.KEY=VALUE``) or ``[options.NAME]``, typed,
checked, and written into records."""

from __future__ import annotations

import json

from sslbench_plugins.protocols.finetune import FineTune
from sslbench_plugins.protocols.linear import LinearProbe

PLUGIN = '''
import torch
import sslbench
from sslbench.data import DatasetSpec, ImageData
from sslbench.protocol import EvaluationProtocol, ProtocolResult


def load(request):
    n = request.options["per_class"] * 2
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, request.resolution, request.resolution),
                      dtype=torch.uint8, generator=g)
    x[: n // 2, 0] = 255                       # class 0 is red: learnable
    y = torch.arange(n) // (n // 2)
    return ImageData("tiny", ["a", "b"], x, y, x[::2], y[::2],
                     provenance={"per_class": request.options["per_class"]})


class Guess(EvaluationProtocol):
    name = "guess"
    description = "always the same class (test plugin)"
    defaults = {"answer": 0}

    def evaluate(self, ctx):
        answer = self.options["answer"]
        predict = lambda split: torch.full((len(split),), answer, device=split.labels.device)
        return ProtocolResult(predict, float((ctx.val.labels == answer).float().mean()),
                              {"chosen": f"class {answer}"})


@sslbench.hookimpl
def sslbench_datasets():
    return [DatasetSpec("tiny", load, "random pixels", defaults={"per_class": 10})]


@sslbench.hookimpl
def sslbench_protocols():
    return [Guess]
'''


def records(out):
    return {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}


def test_protocol_options_have_per_preset_values():
    assert LinearProbe.for_preset("quick").options["max_iter"] == 500
    assert LinearProbe.for_preset("standard").options["max_iter"] == 1000
    assert FineTune.for_preset("standard", lr=0.1).options == {
        **FineTune.defaults, **FineTune.presets["standard"], "lr": 0.1}


def test_every_kind_takes_options_and_records_them(fast_run, tmp_path):
    plugin = tmp_path / "kinds.py"
    plugin.write_text(PLUGIN)
    status, _, err = fast_run("--plugin", str(plugin), "--dataset", "tiny", "--tasks",
                              "rotation", "--fractions", "1.0", "--protocols", "linear,guess",
                              "--opt", "tiny.per_class=12", "--opt", "guess.answer=1",
                              "--opt", "smallcnn.widths=[8,16]", "--opt", "linear.l2=[0.5]",
                              "--opt", "rotation.flip=false")
    assert status == 0, err
    recs = records(tmp_path / "results")
    linear = recs["tiny__smallcnn__rotation__linear__f1__s0"]
    assert linear["options"]["backbone"] == {"widths": [8, 16]}
    assert linear["options"]["dataset"] == {"per_class": 12}
    assert linear["options"]["protocol"]["l2"] == [0.5]
    assert linear["options"]["tasks"]["rotation"]["flip"] is False
    assert linear["details"]["chosen_l2"] == 0.5
    assert len(linear["details"]["stages"]) == 2                     # two stages: 8, 16
    assert linear["data"]["n_test"] == 12                            # 24 images, every other
    guess = recs["tiny__smallcnn__scratch__guess__f1__s0"]
    assert guess["options"]["protocol"] == {"answer": 1}
    assert guess["details"]["chosen"] == "class 1"
    assert guess["protocol_summary"] == "answer 1"                   # the default summary


def test_sweep_file_options_and_list(cli, fast_run, tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text('tasks = ["rotation"]\nfractions = [1.0]\nprotocols = ["linear", "knn"]\n'
                      "[options.knn]\nk = [3]\n[options.linear]\nmax_iter = 7\n")
    status, _, err = fast_run("--config", str(config))
    assert status == 0, err
    recs = records(tmp_path / "results")
    assert recs["digits__smallcnn__rotation__knn__f1__s0"]["details"]["chosen_k"] == 3
    linear = recs["digits__smallcnn__rotation__linear__f1__s0"]
    assert linear["options"]["protocol"]["max_iter"] == 20    # the flag (FAST_FLAGS) wins
    status, out, _ = cli("list", "protocols")
    assert status == 0 and "max_iter=500" in out and "l2=[1e-05" in out


