"""``nonlinear``: a frozen backbone and RotNet's non-linear classifier on one stage's feature
maps (Gidaris, Singh & Komodakis 2018, and their code, gidariss/FeatureLearningRotNet:
``architectures/NonLinearClassifier.py`` and the CIFAR-10 configs).

Two heads, as the authors define them (``head``):

* ``conv``: their ``NIN_ConvBlock3``, the classifier of the paper's semi-supervised CIFAR-10
  table ("RotNet + conv"): three conv-BN-ReLU blocks (3x3, then two 1x1, ``width`` channels,
  192 in the paper), global average pooling and a linear layer, trained 100 epochs;
* ``mlp``: their ``MultLayer``: the flattened map, two bias-free linear layers of
  ``min(20 x classes, 2048)`` units each with batch normalisation and ReLU, and a linear
  layer; trained 50 epochs.

Training is the authors': SGD with Nesterov momentum 0.9, weight decay 5e-4 on every
parameter, batch 128, learning rate 0.1 times 1, 0.2, 0.04, 0.008 after 35/70/85% of the
epochs (conv; mlp: 40/80/90%), an "epoch" being ``epoch_size`` images drawn from the labeled
set (50,000 in the configs of every K: at 20 labels per class each image is seen 250 times
an epoch). Initialisation is theirs too (conv N(0, sqrt(2/(k*k*out))), linear
N(0, sqrt(2/out)), BN weight 1).

With ``augment`` (the default, as the authors' loader does) every training batch is cropped
(4 px zero padding at 32 px) and flipped before the frozen network, so its maps are computed
at every step; without it (the quick preset) the labeled images' maps are computed once per
cell and the head trains on them as they are, a departure whose effect is measured in
docs/evaluation.md. Departures, said there too: the head kept is the one of
the epoch and stage with the best validation accuracy on the cell's own validation images
(the authors report the last epoch of block 2, the block chosen on the test set in the
paper's layer study). With no validation image the first stage of ``stages`` and the last
epoch are taken, a rule fixed in advance.
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

import sslbench
from sslbench.options import Range
from sslbench.protocol import EvalContext, EvaluationProtocol, ProtocolResult, Split, Work
from sslbench.augment import random_crop, random_flip, to_float
from sslbench.training import accuracy, autocast

# the authors' schedules: (epochs, the shares of them after which lr drops by 5x)
PAPER_SCHEDULE = {"conv": (100, [0.35, 0.70, 0.85]), "mlp": (50, [0.40, 0.80, 0.90])}


def conv_head(channels: int, width: int, num_classes: int) -> nn.Sequential:
    """``NIN_ConvBlock3``: conv3x3-BN-ReLU, two conv1x1-BN-ReLU, global average pool,
    linear."""
    def block(cin: int, k: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, width, k, padding=(k - 1) // 2, bias=False),
                nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
    return nn.Sequential(*block(channels, 3), *block(width, 1), *block(width, 1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))


def mlp_head(inputs: int, num_classes: int) -> nn.Sequential:
    """``MultLayer``: flatten, two bias-free linear-BN-ReLU layers of min(20C, 2048) units,
    linear."""
    units = min(20 * num_classes, 2048)
    return nn.Sequential(nn.Flatten(),
                         nn.Linear(inputs, units, bias=False), nn.BatchNorm1d(units),
                         nn.ReLU(inplace=True),
                         nn.Linear(units, units, bias=False), nn.BatchNorm1d(units),
                         nn.ReLU(inplace=True), nn.Linear(units, num_classes))


def init_like_authors(head: nn.Module) -> None:
    """The authors' ``initilize``: conv weights N(0, sqrt(2 / (k*k*out))), linear weights
    N(0, sqrt(2 / out)) and zero bias, BN weight 1 and bias 0."""
    for m in head.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / m.out_features))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def epoch_indices(n: int, epoch_size: int, generator: torch.Generator) -> torch.Tensor:
    """``epoch_size`` positions in [0, n): whole random permutations of the labeled set, as
    many as it takes, cut to size (each image about equally often)."""
    rounds = -(-epoch_size // n)
    device = generator.device
    return torch.cat([torch.randperm(n, generator=generator, device=device)
                      for _ in range(rounds)])[:epoch_size]


class NonLinearProbe(EvaluationProtocol):
    name = "nonlinear"
    description = "frozen backbone, RotNet's conv or MLP classifier on a stage's feature maps"
    defaults = {
        "head": "conv",        # conv: NIN_ConvBlock3 ("RotNet + conv"); mlp: MultLayer
        "stages": [2],         # candidate stages (1 = the first), chosen on validation
        "width": 192,          # channels of the conv head (the paper's 192)
        "epochs": 0,           # 0: the paper's for the head (conv 100, mlp 50)
        "epoch_size": 50000,   # images drawn from the labeled set per epoch (the paper's)
        "batch_size": 128,
        "lr": 0.1,
        "weight_decay": 5e-4,
        "augment": True,       # crop and flip each batch before the frozen network (theirs)
    }
    ranges = {"stages": Range(ge=1), "width": Range(ge=1), "epochs": Range(ge=0),
              "epoch_size": Range(ge=1), "batch_size": Range(ge=1), "lr": Range(gt=0),
              "weight_decay": Range(ge=0)}
    # a laptop CPU: the 8x8 stage of SmallCNN (as the paper's NIN block 2 is 8x8), a
    # narrower head and 8 epochs of 5,000 images (the paper's budget is 5,000,000 images)
    presets = {"quick": {"stages": [3], "width": 96, "epochs": 8, "epoch_size": 5000,
                         "augment": False}}

    def check_options(self) -> None:
        self.require("head", self.options["head"] in PAPER_SCHEDULE, "conv or mlp")
        self.require("stages", bool(self.options["stages"])
                     and all(isinstance(s, int) and s >= 1 for s in self.options["stages"]),
                     "a non-empty list of stage numbers >= 1")

    def check_backbone(self, backbone: str, stage_dims: list[int]) -> None:
        n = len(stage_dims)
        self.require("stages", all(s <= n for s in self.options["stages"]),
                     f"stages of backbone {backbone!r} (1 to {n})")

    @property
    def schedule(self) -> tuple[int, list[float]]:
        paper_epochs, milestones = PAPER_SCHEDULE[self.options["head"]]
        return int(self.options["epochs"]) or paper_epochs, milestones

    def summary(self) -> str:
        o = self.options
        epochs, milestones = self.schedule
        head = (f"conv head (3 conv blocks of {o['width']} channels)" if o["head"] == "conv"
                else "MLP head (2 hidden layers)")
        return (f"RotNet's {head} on the frozen feature maps of stage "
                f"{'/'.join(map(str, o['stages']))} "
                + ("of each batch cropped and flipped" if o["augment"] else
                   "computed once (no augmentation)")
                + f", {epochs} epochs of {o['epoch_size']} "
                f"images, SGD lr {o['lr']:g} dropping 5x at "
                f"{'/'.join(f'{m:.0%}' for m in milestones)}; stage and epoch chosen on "
                "validation")

    def work(self, n_train: int, n_val: int, n_test: int) -> Work:
        """Forward passes of the frozen network, per candidate stage: the labeled images once
        (or, with ``augment``, every image of every epoch), the validation images and the
        test split. The head's own training on the maps is not counted (the dry run's cost
        model times the network)."""
        epochs, _ = self.schedule
        stages = len(self.options["stages"])
        labeled = epochs * int(self.options["epoch_size"]) if self.options["augment"] \
            else n_train
        return Work(predict=stages * (labeled + n_val) + n_test)

    def evaluate(self, ctx: EvalContext) -> ProtocolResult:
        stages = [s for s in self.options["stages"]]
        n_stages = len(ctx.backbone.stage_dims)
        bad = [s for s in stages if s > n_stages]
        if bad:
            raise ValueError(f"nonlinear: stage {bad[0]} of a backbone with {n_stages} stages")
        has_val = len(ctx.val) > 0
        if not has_val:
            stages = stages[:1]
        fits = []
        for stage in stages:
            fits.append(self._fit(ctx, stage, has_val))
        best = max(fits, key=lambda f: f["val_accuracy"]) if has_val else fits[0]

        def predictor(fit):
            def predict(split: Split) -> torch.Tensor:
                return self._predict(fit["head"], split.stage_maps(fit["stage"]), ctx)
            return predict

        chosen = f"stage {best['stage']}, epoch {best['epoch']}"
        return ProtocolResult(
            predict=predictor(best), val_accuracy=best["val_accuracy"] if has_val else None,
            details={"chosen_stage": best["stage"], "chosen_epoch": best["epoch"],
                     "epochs": self.schedule[0], "head": self.options["head"],
                     "chosen": chosen if has_val else
                     f"{chosen} (no validation image: the first stage, the last epoch)",
                     "chosen_on": "validation" if has_val else "preset",
                     "stages": [{k: f[k] for k in ("stage", "epoch", "val_accuracy", "seconds",
                                                   "final_loss")} for f in fits]},
            extra_predictions=({f"stage{f['stage']}": predictor(f) for f in fits}
                               if len(fits) > 1 else {}))

    def _epoch_maps(self, ctx: EvalContext, stage: int):
        """``maps_of(index_batches)``: for each index batch of the labeled images, (index,
        training maps): of the images cropped and flipped anew through the frozen network
        (``augment``), or taken from the maps computed once for the cell. One call reads its
        batches in one pass of the images' loader, so a streamed set starts its loader once
        an epoch, not once a step."""
        if not self.options["augment"]:
            cached = ctx.labeled.stage_maps(stage)
            return lambda batches: ((idx, cached[idx]) for idx in batches)
        frozen = ctx.backbone.eval().requires_grad_(False)
        generator = ctx.generator(f"nonlinear-augment:{stage}")

        def maps_of(batches):
            for idx, images in ctx.labeled.images.batches(batches):
                x = to_float(images)
                x = random_flip(random_crop(x, max(1, x.shape[-1] // 8), generator,
                                            mode="constant"), generator)
                with torch.no_grad(), autocast(ctx.device, ctx.autocast_dtype):
                    maps = frozen.stage_maps(frozen.normalise(x))[stage - 1].float()
                yield idx, maps      # outside no_grad: the consumer trains the head on them
        return maps_of

    def _predict(self, head: nn.Module, maps: torch.Tensor, ctx: EvalContext) -> torch.Tensor:
        head.eval()
        with torch.no_grad(), autocast(ctx.device, ctx.autocast_dtype):
            return torch.cat([head(x).argmax(1) for x in maps.split(1024)])

    def _fit(self, ctx: EvalContext, stage: int, has_val: bool) -> dict:
        """One head on one stage: the authors' schedule, validation after every epoch, the
        best epoch's weights kept (the last epoch's without validation images)."""
        o = self.options
        started = time.perf_counter()
        y = ctx.labeled.labels
        maps_of = self._epoch_maps(ctx, stage)
        x_val = ctx.val.stage_maps(stage) if has_val else None
        [(_, x)] = list(maps_of([torch.arange(min(2, len(y)), device=y.device)]))  # the shape
        # the head's initialisation: a function of the cell's seed and the stage
        torch.manual_seed(ctx.generator(f"nonlinear-init:{stage}", torch.device("cpu"))
                          .initial_seed())
        head = (conv_head(x.shape[1], int(o["width"]), ctx.num_classes) if o["head"] == "conv"
                else mlp_head(x[0].numel(), ctx.num_classes))
        init_like_authors(head)
        head = head.to(ctx.device)
        fused = {"fused": True} if ctx.device.type == "cuda" else {}
        optimizer = torch.optim.SGD(head.parameters(), lr=float(o["lr"]), momentum=0.9,
                                    nesterov=True, weight_decay=float(o["weight_decay"]),
                                    **fused)
        epochs, milestones = self.schedule
        drops = [math.ceil(m * epochs) for m in milestones]
        order = ctx.generator(f"nonlinear-batches:{stage}")
        best = {"stage": stage, "epoch": 0, "val_accuracy": -1.0, "head": None}
        batch = min(int(o["batch_size"]), len(y))
        loss = torch.zeros(())
        with ctx.reporter.training(f"nonlinear stage {stage} {len(y)} labels", epochs) as bar:
            for epoch in range(1, epochs + 1):
                lr = float(o["lr"]) * 0.2 ** sum(epoch > d for d in drops)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                head.train()
                batches = [idx for idx in epoch_indices(len(y), int(o["epoch_size"]), order)
                           .split(batch) if len(idx) >= 2]   # batch norm needs two images
                for idx, maps in maps_of(batches):
                    with autocast(ctx.device, ctx.autocast_dtype):
                        loss = F.cross_entropy(head(maps), y[idx.to(y.device)])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                val_acc = (accuracy(self._predict(head, x_val, ctx), ctx.val.labels)
                           if has_val else math.nan)
                if not has_val or val_acc >= best["val_accuracy"]:   # ties: the later epoch
                    best.update(epoch=epoch, val_accuracy=val_acc,
                                head=copy.deepcopy(head).eval())
                rate = epoch * int(o["epoch_size"]) / max(1e-9, time.perf_counter() - started)
                bar.epoch_done(epoch, float(loss.detach()), rate, val=val_acc)
        return {**best, "seconds": time.perf_counter() - started,
                "final_loss": float(loss.detach())}


@sslbench.hookimpl
def sslbench_protocols():
    return [NonLinearProbe]
