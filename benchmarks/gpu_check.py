"""What no CPU can measure, in one command for a machine with a CUDA GPU (under ten minutes):

    python benchmarks/gpu_check.py --cifar10 PATH     # a folder of train/CLASS and test/CLASS
                                                      # images, or torchvision's CIFAR-10 folder

1. **bf16 throughput.** Rotation pretraining steps (128 source images, 512 rotated inputs)
   with the network of the ``rotnet-cifar10`` preset (NIN, 4 blocks) and of the ``standard``
   preset (ResNet-18), as sslbench trains them on CUDA (bf16 autocast, channels_last, fused
   SGD), and in fp32 beside: source images per second.
2. **The steps of the paper's table.** NIN trained on labeled batches of 128 (the
   ``finetune`` protocol of the preset: RotNet's supervised rows) and RotNet's conv head on
   cached 192x8x8 maps (the ``nonlinear`` protocol: "RotNet + conv"): steps per second.
3. **One RotNet-preset epoch on CIFAR-10**, through sslbench itself (``run_sweep`` with
   ``pretrain_epochs=1``), timed from its record: data loading and placement included.
4. **The whole paper table's estimated time**: per seed, 200 pretraining epochs, and at each
   of the five budgets (20, 100, 400, 1000, 5000 labels per class) the conv classifier's 100
   epochs of 50,000 maps and supervised NIN's 78,125 steps, for scratch and rotation.

It writes ``benchmarks/gpu_check.json`` and prints a table. ``--device cpu --quick`` runs
every branch on a CPU in a minute or two (tests/benchmarks check it), with numbers that say
nothing about a GPU. sslbench has never run on a GPU (docs/scaling.md): this is the first
thing to run on one.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sslbench.augment import standard_augment, to_float
from sslbench.training import autocast, autocast_dtype_for, make_optimizer, to_device
from sslbench._core.plugins import PluginHost
from sslbench._core.seeding import make_generator

HERE = Path(__file__).resolve().parent
BUDGETS = (20, 100, 400, 1000, 5000)      # RotNet's K labels per class
PAPER = {"pretrain_epochs": 200, "conv_epochs": 100, "epoch_size": 50_000,
         "supervised_steps": 78_125}        # 200 epochs of 50,000 images at batch 128


def timed_steps(step, steps: int, device: torch.device, warmup: int = 3) -> float:
    """Seconds per call of ``step()``, after ``warmup`` calls (CUDA synchronised)."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / steps


def rotation_rate(host: PluginHost, backbone_name: str, device: torch.device,
                  dtype: torch.dtype | None, steps: int, batch: int = 128) -> float:
    """Source images per second of rotation pretraining steps on random images."""
    torch.manual_seed(0)
    backbone = to_device(host.backbone(backbone_name).build(32), device)
    task = host.task("rotation").for_preset(None)
    head = to_device(task.build_head(backbone), device)
    optimizer = make_optimizer([backbone, head], 0.1, 5e-4, device)
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=device)
    gen = make_generator(0, "gpu-check", device)

    def step():
        with autocast(device, dtype):
            loss = task.pretext_loss(backbone, head, to_float(images), gen).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return batch / timed_steps(step, steps, device)


def supervised_rate(host: PluginHost, device: torch.device, dtype: torch.dtype | None,
                    steps: int, batch: int = 128) -> float:
    """Steps per second of NIN trained on labeled batches (crop and flip, as finetune)."""
    torch.manual_seed(0)
    backbone = to_device(host.backbone("nin").build(32), device)
    fc = to_device(torch.nn.Linear(backbone.feature_dim, 10), device)
    optimizer = make_optimizer([backbone, fc], 0.1, 5e-4, device)
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)
    gen = make_generator(0, "gpu-check-supervised", device)

    def step():
        with autocast(device, dtype):
            loss = F.cross_entropy(fc(backbone(standard_augment(to_float(images), gen))).float(),
                                   labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return 1 / timed_steps(step, steps, device)


def conv_head_rate(device: torch.device, dtype: torch.dtype | None, steps: int,
                   batch: int = 128) -> float:
    """Steps per second of RotNet's conv head on cached 192x8x8 maps (nonlinear)."""
    from sslbench_plugins.protocols.nonlinear import conv_head, init_like_authors
    torch.manual_seed(0)
    head = conv_head(192, 192, 10)
    init_like_authors(head)
    head = head.to(device)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    maps = torch.randn(batch, 192, 8, 8, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)

    def step():
        with autocast(device, dtype):
            loss = F.cross_entropy(head(maps).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return 1 / timed_steps(step, steps, device)


def one_epoch(dataset: str, device: str, quick: bool) -> dict:
    """One RotNet-preset pretraining epoch through sslbench, from its record."""
    from sslbench import run_sweep
    with tempfile.TemporaryDirectory() as tmp:
        options = {"nonlinear": {"epochs": 1, "epoch_size": 256 if quick else 50_000}}
        run_sweep(datasets=[dataset], preset="rotnet-cifar10", tasks=["rotation"],
                  protocols=["nonlinear"], labels_per_class=[20], seeds=[0],
                  settings={"pretrain_epochs": 1}, options=options, device=device,
                  out=str(Path(tmp) / "out"), cache_dir=str(Path(tmp) / "cache"))
        records = [json.loads(p.read_text()) for p in (Path(tmp) / "out" / "records").glob("*.json")]
    rotation = next(r for r in records if r["task"] == "rotation")
    if rotation["status"] != "ok":
        raise SystemExit(f"gpu_check: the one-epoch run failed: {rotation['error']}")
    pre = rotation["pretraining"]
    return {"pretrain_epoch_s": pre["seconds"], "images": pre["n_images"],
            "images_per_s": pre["images_per_s"], "nonlinear_cell_s": rotation["wall_time_s"]}


def paper_table_hours(epoch_s: float, conv_steps_per_s: float, supervised_steps_per_s: float,
                      seeds: int) -> dict:
    """Hours of the paper's table per the measured rates (cells run one after another)."""
    pretrain = PAPER["pretrain_epochs"] * epoch_s
    conv = len(BUDGETS) * PAPER["conv_epochs"] * math.ceil(PAPER["epoch_size"] / 128) \
        / conv_steps_per_s
    # scratch and rotation are both fine-tuned by supervised NIN's schedule
    supervised = 2 * len(BUDGETS) * PAPER["supervised_steps"] / supervised_steps_per_s
    per_seed = pretrain + 2 * conv + supervised         # conv classifier on both rows
    return {"per_seed_h": per_seed / 3600, "seeds": seeds, "total_h": seeds * per_seed / 3600,
            "pretraining_h": pretrain / 3600, "conv_classifier_h": 2 * conv / 3600,
            "supervised_h": supervised / 3600}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar10", default="cifar10",
                        help="imagefolder path of CIFAR-10 (train/, test/), or 'cifar10' "
                             "for torchvision's download in ./data")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true",
                        help="a few steps and the digits data: check the script, not the GPU")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the estimated table")
    parser.add_argument("--out", default=str(HERE / "gpu_check.json"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: error: no CUDA device here (this check is for a GPU; "
              "--device cpu --quick checks the script)", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    bf16 = autocast_dtype_for(device)         # bf16 on CUDA, None (fp32) on the CPU
    host = PluginHost.from_environment()
    steps = 2 if args.quick else 30
    result: dict = {"device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                               else "cpu"), "torch": torch.__version__, "quick": args.quick}
    rates = {}
    for preset, backbone in (("rotnet-cifar10", "nin"), ("standard", "resnet18")):
        for name, dtype in (("bf16", bf16), ("fp32", None)):
            if name == "bf16" and dtype is None:
                continue                      # the CPU trains in fp32 only
            rates[f"{preset} {name}"] = rotation_rate(host, backbone, device, dtype, steps)
            print(f"rotation, {preset} ({backbone}), {name}: "
                  f"{rates[f'{preset} {name}']:,.0f} source img/s")
    result["rotation_source_images_per_s"] = rates
    result["supervised_nin_steps_per_s"] = supervised_rate(host, device, bf16, steps)
    result["conv_head_steps_per_s"] = conv_head_rate(device, bf16, steps)
    print(f"supervised NIN: {result['supervised_nin_steps_per_s']:.1f} steps/s; conv head "
          f"on 192x8x8 maps: {result['conv_head_steps_per_s']:.1f} steps/s")
    dataset = "digits" if args.quick else (args.cifar10 if args.cifar10 == "cifar10"
                                          else f"imagefolder:{args.cifar10}")
    epoch = one_epoch(dataset, args.device, args.quick)
    result["one_epoch"] = {**epoch, "dataset": dataset}
    print(f"one rotnet-cifar10 pretraining epoch on {dataset}: {epoch['pretrain_epoch_s']:.0f} s "
          f"({epoch['images']} images)")
    epoch_s = epoch["pretrain_epoch_s"] * (50_000 / epoch["images"] if args.quick else 1)
    result["paper_table"] = paper_table_hours(epoch_s, result["conv_head_steps_per_s"],
                                              result["supervised_nin_steps_per_s"], args.seeds)
    t = result["paper_table"]
    print(f"the paper's table (scratch and rotation, 5 budgets, {args.seeds} seeds): "
          f"{t['total_h']:.1f} h; per seed {t['pretraining_h']:.1f} h pretraining, "
          f"{t['conv_classifier_h']:.1f} h conv classifier, {t['supervised_h']:.1f} h "
          "supervised")
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
