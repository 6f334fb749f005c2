"""The streamed data path: image files decoded in DataLoader workers, batch by batch, for data
sets that do not fit on the device (``--stream``)."""

import json

import pytest
import torch
from conftest import FILES_RESOLUTION

from sslbench.data import DatasetRequest
from sslbench.errors import SSLBenchError
from sslbench.images import (ImageFiles, ResidentImages, StreamedImages, TensorSource,
                             decode_all)
from sslbench._core.plugins import PluginHost
from sslbench._core.progress import Reporter
from sslbench._core.seeding import make_generator
from sslbench._core.pretraining import pretrain
from sslbench.training import epoch_batches

RES = FILES_RESOLUTION     # the shared ``files`` fixture's (conftest)
CPU = torch.device("cpu")


def test_streamed_batches_hold_the_decoded_pixels_in_the_asked_order(files):
    decoded = decode_all(files, workers=0)
    assert decoded.shape == (30, 3, RES, RES) and decoded.dtype == torch.uint8
    order = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    for workers in (0, 2):
        got = list(StreamedImages(files, CPU, workers).batches(order.split(7)))
        assert [len(i) for i, _ in got] == [7, 7, 7, 7, 2]
        assert torch.equal(torch.cat([i for i, _ in got]), order)
        assert torch.equal(torch.cat([x for _, x in got]), decoded[order])


def test_an_unreadable_file_is_one_line_naming_it(files, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    stream = StreamedImages(ImageFiles(files.paths + [str(broken)], RES), CPU, workers=2)
    with pytest.raises(SSLBenchError) as info:
        list(stream.chunks(8))
    assert "broken.png" in str(info.value) and "\n" not in str(info.value)


def test_file_fingerprint_follows_names_and_sizes(files, tmp_path):
    before = files.fingerprint()
    assert ImageFiles(list(files.paths), RES).fingerprint() == before
    assert ImageFiles(files.paths, RES + 1).fingerprint() != before
    assert files.subset(range(29)).fingerprint() != before
    with open(files.paths[0], "ab") as f:
        f.write(b"\0")
    assert ImageFiles(files.paths, RES).fingerprint() != before


def _pretrain(images, workers):
    host = PluginHost.from_environment()
    torch.manual_seed(0)
    backbone = host.backbone("smallcnn").create(RES)
    task = host.task("rotation")()
    settings = {"pretrain_epochs": 2, "pretrain_batch_size": 8, "pretrain_lr": 0.05,
                "weight_decay": 5e-4}
    source = StreamedImages(TensorSource(images), CPU, workers) if workers is not None \
        else ResidentImages(images)
    result = pretrain(task, backbone, source, settings, CPU, None, 0, Reporter(), "t")
    return result, backbone.state_dict()


def test_streamed_pretraining_does_not_depend_on_the_number_of_workers():
    images = torch.randint(0, 256, (40, 3, RES, RES), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    (r0, s0), (r2, s2) = _pretrain(images, 0), _pretrain(images, 2)
    assert [h["loss"] for h in r0["history"]] == [h["loss"] for h in r2["history"]]
    assert all(torch.equal(s0[k], s2[k]) for k in s0)
    # resident and streamed runs draw their batch order from different generators
    resident, _ = _pretrain(images, None)
    assert resident["n_images"] == r0["n_images"] == 40


def test_streamed_order_is_a_seeded_permutation():
    stream = StreamedImages(TensorSource(torch.zeros(10, 3, 2, 2, dtype=torch.uint8)), CPU, 0)
    gen = make_generator(3, "x")
    a = torch.cat(list(epoch_batches(10, 5, stream.order_generator(gen), CPU)))
    b = torch.cat(list(epoch_batches(10, 5, stream.order_generator(make_generator(3, "x")), CPU)))
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(10))


def test_exemplar_takes_its_surrogates_from_a_stream(files):
    from sslbench_plugins.tasks.exemplar import Exemplar
    decoded = decode_all(files, workers=0)
    a = Exemplar(num_exemplars=12, fill_epoch=False).prepare(StreamedImages(files, CPU, 2),
                                                            make_generator(0, "p"))
    b = Exemplar(num_exemplars=12, fill_epoch=False).prepare(ResidentImages(decoded),
                                                            make_generator(0, "p"))
    assert torch.equal(a, b) and a.shape == (12, 3, RES, RES)


def test_sweep_with_every_split_streamed(fast_run, image_folder, tmp_path):
    status, out, err = fast_run("--dataset", f"imagefolder:{image_folder}", "--stream", "always",
                                "--workers", "2", "--tasks", "rotation,exemplar,rotation+uda",
                                "--fractions", "0.5", "--protocols", "linear,finetune,knn",
                                "--task-opt", "exemplar.num_exemplars=10")
    assert status == 0, err
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "records").glob("*")]
    assert len(records) == 10 and all(r["status"] == "ok" for r in records)
    placement = records[0]["data"]["placement"]
    # each cell's validation images come out of its labels (no fixed validation split)
    assert placement == {"pretraining": "streamed", "test": "streamed",
                         "reason": "--stream always", "workers": 2}


def test_bad_stream_settings_are_one_line(fast_run, tmp_path):
    status, _, err = fast_run("--stream", "sometimes")
    assert status == 2 and "sometimes" in err and len(err.strip().splitlines()) == 1
    config = tmp_path / "c.toml"
    config.write_text('stream = "sometimes"\n')
    status, _, err = fast_run("--config", str(config))
    assert status == 2 and err.strip() == ("sslbench: error: stream must be auto, never or "
                                           "always, not 'sometimes'")
    config.write_text("workers = -1\n")
    status, _, err = fast_run("--config", str(config))
    assert status == 2 and "workers" in err and len(err.strip().splitlines()) == 1


def test_image_folder_loader_lists_files(image_folder, tmp_path):
    spec, argument = PluginHost.from_environment().dataset(f"imagefolder:{image_folder}")
    data = spec.load(DatasetRequest(argument, RES, str(tmp_path)))
    assert isinstance(data.train_images, ImageFiles) and data.train_images.shape[1:] == (3, RES, RES)


def test_bf16_autocast_path_runs_every_task_and_protocol(monkeypatch, tmp_path, image_folder):
    """The precision branch that CUDA takes (bf16 autocast), run on the CPU, whose autocast
    also supports bf16: every task and protocol must handle bf16 activations, streamed. On
    the 30-image folder: what is tested is the path, and bf16 on a CPU is slow."""
    import sslbench
    import sslbench._core.runner as runner
    from conftest import FAST, FAST_OPTIONS
    monkeypatch.setattr(runner, "autocast_dtype_for", lambda device: torch.bfloat16)
    frame = sslbench.run_sweep(
        datasets=[f"imagefolder:{image_folder}"],
        out=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"), device="cpu",
        tasks=["rotation", "exemplar", "jigsaw", "relpatch", "rotation+uda"], fractions=[0.5],
        protocols=["linear", "finetune", "knn"], stream="always", workers=0,
        task_options={"exemplar": {"num_exemplars": 50}, "jigsaw": {"permutations": 10}},
        settings={**FAST, "resolution": 32}, options=FAST_OPTIONS).to_frame()
    assert frame["n_failed"].sum() == 0 and len(frame) == 1 + 3 * 5
    record = json.loads(next((tmp_path / "out" / "records").glob("*jigsaw*linear*")).read_text())
    assert record["precision"] == "bfloat16"
