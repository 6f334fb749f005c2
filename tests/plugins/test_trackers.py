"""--log-to tensorboard,mlflow,wandb (sslbench_plugins.trackers): every cell's curves,
metrics, configuration and record, read back with TensorBoard's own reader, MLflow's client
and W&B's own record schema (one sweep logs to all three)."""

import json

import pytest

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")
pytest.importorskip("wandb")


def test_a_sweep_logs_to_tensorboard_mlflow_and_wandb(fast_run, tmp_path, monkeypatch):
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")             # no network
    status, _, err = fast_run("--tasks", "rotation", "--fractions", "1.0", "--protocols",
                              "linear,finetune", "--log-to", "tensorboard,mlflow,wandb")
    assert status == 0, err
    out = tmp_path / "results"
    records = {r["cell_id"]: r for r in (json.loads(p.read_text())
                                         for p in (out / "records").glob("*.json"))}
    cell = "digits__smallcnn__rotation__finetune__f1__s0"
    record = records[cell]
    # TensorBoard: one folder per cell, scalars as recorded
    events = EventAccumulator(str(out / "tensorboard" / cell))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"pretraining/loss", "pretraining/pretext_accuracy", "finetune/val_accuracy",
            "final/test_accuracy"} <= set(tags)
    val = [(e.step, e.value) for e in events.Scalars("finetune/val_accuracy")]
    assert val == [(p["step"], pytest.approx(p["val_accuracy"]))
                   for p in record["details"]["curve"]]
    loss = [e.value for e in events.Scalars("pretraining/loss")]
    assert loss == [pytest.approx(h["loss"]) for h in record["pretraining"]["history"]]
    assert events.Scalars("final/test_accuracy")[0].value == pytest.approx(
        record["metrics"]["test_accuracy"])
    assert cell in events.Tensors("record/text_summary")[0].tensor_proto.string_val[0].decode()
    assert set(p.name for p in (out / "tensorboard").iterdir()) == set(records)
    # MLflow: one run per cell in the results folder's experiment, under OUT/mlruns
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("sslbench results")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == set(records)
    run = runs[cell]
    assert run.info.status == "FINISHED"
    assert run.data.params["task"] == "rotation" and run.data.params["fraction"] == "1.0"
    assert run.data.params["settings.resolution"] == "16"
    assert run.data.metrics["test_accuracy"] == pytest.approx(record["metrics"]["test_accuracy"])
    history = client.get_metric_history(run.info.run_id, "finetune.val_accuracy")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (p["step"], pytest.approx(p["val_accuracy"])) for p in record["details"]["curve"]]
    artifact = client.download_artifacts(run.info.run_id, "record.json", str(tmp_path / "a"))
    assert json.loads(open(artifact).read())["cell_id"] == cell
    check_wandb(out, records)


def wandb_records(path):
    """The records of an offline W&B run file, decoded with W&B's own protobuf schema. The
    file is a LevelDB-style log after a 7-byte header: 32 KiB blocks of chunks, each with a
    7-byte header (checksum, length, type: 1 whole, 2 first, 3 middle, 4 last)."""
    import struct

    from wandb.proto import wandb_internal_pb2
    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(raw):
        if block - pos % block < 7:                  # a block's tail too short for a header
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        data, pos = raw[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        pending = data if kind in (1, 2) else pending + data
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def item_key(item) -> str:
    """A W&B record item's key ("finetune/step" may come as its parts, in nested_key)."""
    return item.key or "/".join(item.nested_key)


def check_wandb(out, records):
    """W&B's offline run files, one per cell, decoded with W&B's own record schema: the
    configuration, the curves, the final metrics in the summary, the record as an artifact,
    the exit code."""
    runs = sorted((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == len(records)
    seen = set()
    for path in runs:
        kinds = {}
        for r in wandb_records(path):
            kinds.setdefault(r.WhichOneof("record_type"), []).append(r)
        cell = kinds["run"][0].run.display_name
        seen.add(cell)
        config = {i.key: json.loads(i.value_json) for i in kinds["run"][0].run.config.update}
        assert config["task"] == records[cell]["task"] and config["settings.resolution"] == "16"
        summary = {item_key(i): json.loads(i.value_json) for r in kinds["summary"]
                   for i in r.summary.update}
        assert summary["test_accuracy"] == pytest.approx(records[cell]["metrics"]["test_accuracy"])
        history = [{item_key(i): json.loads(i.value_json) for i in r.history.item}
                   for r in kinds.get("history", [])]
        protocol = records[cell]["protocol"]
        curve = [(h[f"{protocol}/step"], h[f"{protocol}/val_accuracy"]) for h in history
                 if f"{protocol}/val_accuracy" in h]
        assert curve == [(p["step"], pytest.approx(p["val_accuracy"]))
                         for p in (records[cell]["details"].get("curve") or [])]
        assert kinds["artifact"] and kinds["exit"][0].exit.exit_code == 0
    assert seen == set(records)


def test_two_plugins_offering_one_tracker_name_is_one_line_naming_both(fast_run, tmp_path):
    """As two tasks or two backbones of one name are: which one --log-to meant is not
    guessed (the later one used to win silently)."""
    source = ("import sslbench\nfrom sslbench.tracking import TrackerSpec\n\n"
              "@sslbench.hookimpl\ndef sslbench_trackers():\n"
              "    return [TrackerSpec('notebook', 'a tracker')]\n")
    for name in ("one", "two"):
        (tmp_path / f"{name}.py").write_text(source)
    status, _, err = fast_run("--tasks", "rotation", "--log-to", "notebook",
                              "--plugin", str(tmp_path / "one.py"),
                              "--plugin", str(tmp_path / "two.py"))
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, err
    assert "tracker 'notebook' is contributed by two plugins:" in lines[0]
    assert "one.py" in lines[0] and "two.py" in lines[0]


def test_an_unknown_tracker_is_one_line(fast_run):
    status, _, err = fast_run("--tasks", "rotation", "--log-to", "neptune")
    assert status == 2 and ("unknown tracker 'neptune' in --log-to; known: mlflow, "
                            "tensorboard, wandb") in err and len(err.strip().splitlines()) == 1
