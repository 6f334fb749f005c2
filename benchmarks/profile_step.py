"""Where the time of a pretraining step goes, on this machine: torch.profiler over sslbench's
real step (the task's ``pretext_loss``, backward, SGD) and over the naive pipeline's data
loading, grouped into a few categories.

    python benchmarks/profile_step.py rotation          # any of the five built-in tasks

It answers "what bounds this ratio?" for benchmarks/RESULTS.md: if the network's forward and
backward dominate sslbench's step, no data path can make it much faster than the model-only
ceiling, and the ratio to the naive pipeline is bounded by ceiling / naive.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tasks import (BATCH, CPU, TASKS, NaiveDataset, make_task,  # noqa: E402
                         new_model, train)

from sslbench.augment import to_float  # noqa: E402
from sslbench._core.seeding import make_generator  # noqa: E402
from sslbench.task import ConsistencyContext  # noqa: E402
from sslbench.training import epoch_batches  # noqa: E402

# operator name fragments -> category (first match wins; the rest is "other")
CATEGORIES = [
    ("convolution backward", ("convolution_backward",)),
    ("convolution forward", ("mkldnn_convolution", "_convolution", "conv2d")),
    ("batch norm", ("batch_norm",)),
    ("optimizer", ("sgd", "_foreach", "optimizer")),
    ("batch construction (indexing, rotation, flip, copies)",
     ("index", "rot90", "flip", "cat", "copy_", "to_float", "where", "contiguous", "clone",
      "stack")),
    ("rest of the network (ReLU, pooling, input normalisation, loss, autograd)",
     ("threshold", "relu", "clamp", "max_pool", "avg_pool", "mean", "autograd", "fill_", "div",
      "sub", "add", "mul", "linear", "addmm", "mm", "softmax", "nll", "cross_entropy")),
]
NETWORK = {"convolution backward", "convolution forward", "batch norm",
           "rest of the network (ReLU, pooling, input normalisation, loss, autograd)"}


def categorise(name: str) -> str:
    lowered = name.lower()
    for category, fragments in CATEGORIES:
        if any(f in lowered for f in fragments):
            return category
    return "other"


def profile_sslbench(name: str, images: torch.Tensor, steps: int) -> dict[str, float]:
    task, pool = make_task(name, images)
    backbone, head, opt = new_model(task)
    gen = make_generator(0, "profile")

    def step(idx: torch.Tensor, i: int) -> None:
        x = to_float(pool[idx])
        if name == "uda":
            loss = task.unlabeled_loss(ConsistencyContext(backbone, None, head, i, steps, 5, gen), x)
        else:
            extra = {"index": idx} if task.uses_index else {}
            loss = task.pretext_loss(backbone, head, x, gen, **extra).loss
        train(backbone, head, opt, loss)

    batches = list(epoch_batches(len(pool), BATCH, gen, CPU))
    step(batches[0], 0)                                   # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i, idx in enumerate(batches[1:steps + 1]):
            step(idx, i)
    totals: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        totals[categorise(event.key)] += event.self_cpu_time_total / 1e6
    return dict(totals)


def naive_loading_rate(name: str, images: torch.Tensor, steps: int) -> float:
    """Images/s of the naive Dataset's per-image PIL work alone (no network), 0 workers."""
    task, pool = make_task(name, images)
    dataset = NaiveDataset(name, pool[: steps * BATCH], task)
    started = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    return len(dataset) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    from conftest import FLOWERS  # the same data as the benchmarks
    from sslbench.data import DatasetRequest
    from sslbench.images import decode_all, default_workers
    from sslbench._core.plugins import PluginHost
    spec, _ = PluginHost.from_environment().dataset("imagefolder:x")
    if FLOWERS.is_dir():
        data = spec.load(DatasetRequest(str(FLOWERS), 32, "data"))
        images, source = decode_all(data.train_images, default_workers()), "flowers 32 px"
    else:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (3453, 3, 32, 32), dtype=torch.uint8, generator=g)
        source = "random 32 px"
    totals = profile_sslbench(args.task, images, args.steps)
    whole = sum(totals.values())
    print(f"{args.task}: {args.steps} steps of {BATCH} source images ({source}), "
          f"{torch.get_num_threads()} threads; self CPU time by category")
    print("| category | seconds | share |\n| --- | ---: | ---: |")
    for category, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"| {category} | {seconds:.3f} | {100 * seconds / whole:.1f}% |")
    print(f"| total | {whole:.3f} | 100% |")
    network = sum(v for k, v in totals.items() if k in NETWORK)
    print(f"the network's forward and backward: {100 * network / whole:.1f}% of the step")
    print(f"sslbench step rate from the profile: {args.steps * BATCH / whole:,.0f} images/s "
          "(the profiler adds overhead)")
    rate = naive_loading_rate(args.task, images, args.steps)
    print(f"naive per-image PIL loading alone (0 workers, no network): {rate:,.0f} images/s")


if __name__ == "__main__":
    main()
