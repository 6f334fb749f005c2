"""Experiment trackers: ``--log-to tensorboard,mlflow``.

Both log each cell when it finishes (:func:`sslbench_cell_finish`, which runs where the cell
ran: the driver, or a Ray or Slurm worker), from its record alone:

* ``tensorboard`` (``pip install 'sslbench[tensorboard]'``): event files under
  ``OUT/tensorboard/CELL/``: the pretraining's loss and pretext accuracy per epoch, the
  protocol's curve (fine-tuning: training loss and validation accuracy per check), the final
  metrics, the configuration as hyper-parameters, and the record as text. ``tensorboard
  --logdir OUT/tensorboard`` shows every cell of the sweep side by side.
* ``mlflow`` (``pip install 'sslbench[mlflow]'``): one MLflow run per cell, in the
  experiment named after the results folder, in the tracking server of
  ``$MLFLOW_TRACKING_URI`` if set, else MLflow's local file store under ``OUT/mlruns``
  (which MLflow 3 keeps in maintenance mode: ``MLFLOW_ALLOW_FILE_STORE`` is set to allow
  it; read it with ``mlflow ui --backend-store-uri OUT/mlruns``): the configuration
  as parameters, the curves as metric histories (step = epoch or fine-tuning step), the
  final metrics, the record as an artifact (``record.json``); a failed cell is a failed run
  tagged with its error.

* ``wandb`` (``pip install 'sslbench[wandb]'``): one Weights & Biases run per cell, in the
  project ``$WANDB_PROJECT`` (else ``sslbench-`` and the results folder's name), files under
  ``OUT/wandb``; offline unless ``$WANDB_MODE`` says otherwise or an API key is set
  (``wandb sync OUT/wandb/offline-run-*`` uploads later): the configuration, the curves
  (each against its own step: ``pretraining/epoch``, ``PROTOCOL/step``), the final metrics
  in the run's summary, the record as an artifact; a failed cell ends with exit code 1.

This module is also the worked example of lifecycle hooks in docs/plugins.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import sslbench
from sslbench.errors import SSLBenchError
from sslbench.record import Record
from sslbench.tracking import TrackerSpec, enabled, final_metrics, params, series


def _need(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise SSLBenchError(f"--log-to {extra} needs the '{module}' package: "
                            f"pip install 'sslbench[{extra}]'") from None


@sslbench.hookimpl
def sslbench_trackers():
    return [TrackerSpec("tensorboard", "TensorBoard event files under OUT/tensorboard/",
                        lambda: _need("tensorboard", "tensorboard")),
            TrackerSpec("mlflow", "an MLflow run per cell ($MLFLOW_TRACKING_URI, else "
                        "OUT/mlruns)", lambda: _need("mlflow", "mlflow")),
            TrackerSpec("wandb", "a Weights & Biases run per cell (offline unless "
                        "$WANDB_MODE or an API key)", lambda: _need("wandb", "wandb"))]


@sslbench.hookimpl
def sslbench_cell_finish(cell, record: Record, out: Path) -> None:
    if enabled("tensorboard", record):
        to_tensorboard(record, Path(out))
    if enabled("mlflow", record):
        to_mlflow(record, Path(out))
    if enabled("wandb", record):
        to_wandb(record, Path(out))


def to_tensorboard(record: Record, out: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter
    with SummaryWriter(log_dir=str(out / "tensorboard" / record["cell_id"])) as writer:
        for name, points in series(record).items():
            for step, value in points:
                writer.add_scalar(name, value, step)
        metrics = final_metrics(record)
        for name, value in metrics.items():
            writer.add_scalar(f"final/{name}", value, 0)
        writer.add_text("record", "```\n" + json.dumps(record.to_dict(), indent=1, default=str)[:60_000]
                        + "\n```")
        writer.add_hparams({k: v[:250] for k, v in params(record).items()},
                           {f"hparam/{k}": v for k, v in metrics.items()}, run_name=".")


def to_mlflow(record: Record, out: Path) -> None:
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        # the local file store: MLflow 3 keeps it in maintenance mode and asks for this
        # opt-out (a database store would need SQLAlchemy, which mlflow-skinny lacks)
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = (out / "mlruns").resolve().as_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)
    name = f"sslbench {out.resolve().name}"
    experiment = client.get_experiment_by_name(name)
    experiment_id = (experiment.experiment_id if experiment is not None
                     else client.create_experiment(name))
    run = client.create_run(experiment_id, run_name=record["cell_id"])
    run_id = run.info.run_id
    now = int(1000 * time.time())
    metrics = [Metric(k.replace("/", "."), v, now, step) for k, points in series(record).items()
               for step, v in points]
    metrics += [Metric(k, v, now, 0) for k, v in final_metrics(record).items()]
    tags = [RunTag("sslbench.cell_id", record["cell_id"]),
            RunTag("sslbench.status", record["status"])]
    if record.get("error"):
        tags.append(RunTag("sslbench.error", str(record["error"])[:5000]))
    parameters = [Param(k, v[:6000]) for k, v in params(record).items()]
    client.log_batch(run_id, tags=tags)
    for start in range(0, len(parameters), 100):          # MLflow's limits per call
        client.log_batch(run_id, params=parameters[start:start + 100])
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start:start + 1000])
    client.log_dict(run_id, record.to_dict(), "record.json")
    client.set_terminated(run_id, "FINISHED" if record["status"] == "ok" else "FAILED")


def to_wandb(record: Record, out: Path) -> None:
    import wandb
    mode = os.environ.get("WANDB_MODE") or (
        "online" if os.environ.get("WANDB_API_KEY") else "offline")
    (out / "wandb").mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=os.environ.get("WANDB_PROJECT") or f"sslbench-{out.resolve().name}",
                     name=record["cell_id"], dir=str(out), mode=mode, config=params(record),
                     job_type=record.get("protocol"), tags=[record["task"], record["protocol"]],
                     reinit="create_new", settings=wandb.Settings(silent=True, console="off"))
    try:
        curves = series(record)
        steps = {name: name.split("/")[0] + ("/epoch" if name.startswith("pretraining/")
                                             else "/step") for name in curves}
        for name, step in steps.items():
            run.define_metric(step)
            run.define_metric(name, step_metric=step)
        for name, points in curves.items():
            for step, value in points:
                run.log({steps[name]: step, name: value})
        for name, value in final_metrics(record).items():
            run.summary[name] = value
        path = Path(run.dir) / "record.json"
        path.write_text(json.dumps(record.to_dict(), indent=1, default=str))
        artifact = wandb.Artifact(f"record-{record['cell_id']}".replace(".", "_"), type="record")
        artifact.add_file(str(path))
        run.log_artifact(artifact)
    finally:
        run.finish(exit_code=0 if record["status"] == "ok" else 1)
