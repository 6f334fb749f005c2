"""Preemption and the time limit on a real Slurm.

Preemption: a unit whose pretraining is interrupted the way Slurm preempts a job (submitit's
``SlurmJob._interrupt``: SIGTERM, then USR2) is requeued by submitit, continues from its last
snapshot and ends with the weights of an uninterrupted run.

Time limit (``--time-limit``): the same unit, pretraining for about 2.5 minutes, submitted
with ``--timeout-min 3``: Slurm itself sends USR2 90 s before the limit (submitit's ``--signal=USR2@90``), the job
checkpoints and is requeued, as often as it takes (submitit allows 3 time-outs), and the unit
ends with the weights of an uninterrupted run.

    sh benchmarks/slurm/start_local_slurm.sh        # a single-node Slurm (root)
    python benchmarks/slurm/preempt_check.py WORKDIR [--time-limit]

Prints what happened; exits 1 if the resumed weights differ or nothing was resumed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import submitit
import torch

from sslbench._core.atomic import safe_torch_load

SWEEP = ["--tasks", "rotation", "--fractions", "1.0", "--protocols", "linear", "--seeds", "0",
         "--set", "pretrain_epochs=40", "--set", "pretrain_batch_size=16",
         "--opt", "linear.max_iter=50", "--checkpoint-every-min", "0", "--quiet"]


def sslbench(work: Path, name: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sslbench", "run", *SWEEP, "--out",
                           str(work / f"out-{name}"), "--cache-dir", str(work / f"cache-{name}"),
                           *flags], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def checkpoint(cache: Path) -> dict:
    [path] = [p for p in (cache / "checkpoints").glob("rotation-*.pt")
              if not p.name.endswith(".resume.pt")]
    return safe_torch_load(path)


def time_limit(work: Path) -> int:
    """A unit longer than its job's 3-minute limit allows before Slurm's warning (90 s
    before the limit): requeued on that signal, continued from its snapshot."""
    longer = ["--set", "pretrain_epochs=30", "--set", "pretrain_batch_size=128"]   # ~2.5 min
    slurm = ["--executor", "slurm", "--cpus-per-job", "1", "--timeout-min", "3", *longer,
             "--wait"]
    t0 = time.time()
    done = sslbench(work, "slurm", *slurm)
    print(f"sslbench run --executor slurm --timeout-min 3 --wait: exit {done.returncode} "
          f"after {time.time() - t0:.0f} s; {done.stdout.strip().splitlines()[-1]}")
    sslbench(work, "local", *longer)          # the uninterrupted run, for its checkpoint
    resumed, whole = checkpoint(work / "cache-slurm"), checkpoint(work / "cache-local")
    same = all(torch.equal(resumed["backbone"][k], whole["backbone"][k]) for k in whole["backbone"])
    after = resumed["info"].get("resumed_after_epoch")
    logs = sorted((work / "out-slurm" / "slurm").glob("*/*_log.*"))   # submitit's .out, .err
    text = "\n".join(p.read_text() for p in logs)
    print(f"pretraining of {whole['info']['seconds']:.0f} s locally; timed out and requeued "
          f"{text.count('Requeued job')} times (submitit in the job logs); the last run resumed "
          f"after epoch {after}; weights equal to an uninterrupted local run: {same}")
    return 0 if same and after else 1


def main(work: Path) -> int:
    work.mkdir(parents=True, exist_ok=True)
    slurm = ["--executor", "slurm", "--cpus-per-job", "1"]
    started = sslbench(work, "slurm", *slurm)
    print(started.stdout.strip().splitlines()[-1])
    jobs = json.loads((work / "out-slurm" / "slurm" / "jobs.json").read_text())["jobs"]
    [unit] = [u for u in jobs if "__rotation__" in u]
    job = submitit.SlurmJob(folder=str(work / "out-slurm" / "slurm" / "%j"),
                            job_id=jobs[unit]["job"])
    snapshots = work / "cache-slurm" / "checkpoints"
    while not any(snapshots.glob("*.resume.pt")):
        time.sleep(0.5)
    time.sleep(2)
    [snapshot] = snapshots.glob("*.resume.pt")
    epoch = safe_torch_load(snapshot)["epoch"]
    print(f"interrupting job {job.job_id} (preemption) after its snapshot of epoch {epoch}")
    job._interrupt()
    waited = sslbench(work, "slurm", *slurm, "--wait")
    print(waited.stdout.strip().splitlines()[-1], waited.stderr.strip()[-300:])
    sslbench(work, "local")                   # the uninterrupted run, for its checkpoint
    resumed, whole = checkpoint(work / "cache-slurm"), checkpoint(work / "cache-local")
    same = all(torch.equal(resumed["backbone"][k], whole["backbone"][k]) for k in whole["backbone"])
    after = resumed["info"].get("resumed_after_epoch")
    log = sorted((work / "out-slurm" / "slurm").glob(f"{job.job_id}/*log.err"))
    requeued = any("requeue" in p.read_text().lower() for p in log)
    print(f"resumed after epoch {after}; requeue in the job's log: {requeued}; "
          f"weights equal to an uninterrupted local run: {same}")
    return 0 if same and after else 1


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    if "--time-limit" in sys.argv[2:]:
        folder.mkdir(parents=True, exist_ok=True)
        sys.exit(time_limit(folder))
    sys.exit(main(folder))
