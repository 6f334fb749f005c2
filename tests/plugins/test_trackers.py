"""--log-to tensorboard,mlflow (sslbench_plugins.trackers): every cell's curves, metrics,
configuration and record, read back with TensorBoard's own reader and MLflow's client."""

import json

import pytest

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")


def test_a_sweep_logs_to_tensorboard_and_mlflow(fast_run, tmp_path, monkeypatch):
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    status, _, err = fast_run("--tasks", "rotation", "--fractions", "1.0",
                              "--protocols", "linear,finetune", "--log-to", "tensorboard,mlflow")
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


def test_an_unknown_tracker_is_one_line(fast_run):
    status, _, err = fast_run("--tasks", "rotation", "--log-to", "neptune")
    assert status == 2 and "unknown tracker 'neptune' in --log-to; known: mlflow, tensorboard" \
        in err and len(err.strip().splitlines()) == 1
