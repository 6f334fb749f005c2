"""The evaluation-protocol interface: how a (pretrained or random) backbone is turned into a
classifier for the downstream task from the labeled subset.

A protocol never sees the test split. It returns a :class:`ProtocolResult` whose ``predict``
the runner calls exactly once on the test split; every choice (epoch, regularisation, probed
layer) must be made on ``ctx.val``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from .backbone import Backbone
from .images import Images
from .options import Configurable
from .progress import Reporter
from ._core.resume import ResumeFile
from ._core.seeding import make_generator
from .task import PretextTask

__all__ = [
    'Split', 'EvalContext', 'ProtocolResult', 'EvaluationProtocol', 'Work'
]


@dataclass
class Split:
    """Labeled images of one split, with lazily cached features.

    ``images`` are uint8 (N, 3, R, R), held on the run's device or streamed
    (:mod:`sslbench.images`): ``images.batches(index_batches)`` and ``images.chunks(size)``
    give uint8 batches on the device either way, and ``images[index]`` a small pick.
    ``labels`` are on the device. ``features()`` returns the frozen backbone's pooled
    features of every stage (a list of (N, D_i) float tensors), computed once per checkpoint
    and reused by every protocol, budget and seed that needs them. ``stage_maps(stage)``
    returns the frozen backbone's feature maps (N, C, H, W) of one stage (1-based), for
    classifiers that read the maps rather than their pooled features (``nonlinear``); the
    test split's are kept for every cell of the checkpoint, a labeled subset's are
    computed for its cell (maps are too large to keep for the whole pool).
    """

    name: str
    images: Images
    labels: torch.Tensor
    features: Callable[[], list[torch.Tensor]]
    maps: Callable[[int], torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def stage_maps(self, stage: int) -> torch.Tensor:
        """Feature maps (N, C, H, W) of stage ``stage`` (1 is the first) of the frozen
        backbone, float, on the device."""
        if self.maps is None:
            raise RuntimeError(f"split {self.name!r} offers no feature maps")
        return self.maps(stage)


@dataclass
class EvalContext:
    """Everything a protocol may use to build its classifier.

    ``backbone`` is a fresh copy initialised from the checkpoint under evaluation (the
    pretrained weights, or a random initialisation for the scratch baseline), already on
    ``device``. ``unlabeled`` holds the training pool's images without labels (like
    :attr:`Split.images`), for ``consistency_tasks`` (``rotation+uda``). ``settings`` are the run's resolved
    hyper-parameters (:mod:`sslbench._core.config`).

    ``resume`` (a :class:`sslbench.training.ResumeFile` of this cell, or ``None``) lets a
    protocol that trains for long continue after a kill or a preemption: ``resume.load()``
    at the start, ``resume.save(snapshot)`` whenever ``resume.due()``, at a point where the
    run can continue exactly (the runner removes the file once the cell's record is written).
    """

    backbone: Backbone
    labeled: Split
    val: Split
    unlabeled: Images
    num_classes: int
    consistency_tasks: list[PretextTask]
    settings: dict[str, Any]
    device: torch.device
    autocast_dtype: torch.dtype | None
    seed: int
    reporter: Reporter
    compile: bool = False   # --compile: protocols that train should torch.compile their model
    resume: ResumeFile | None = None

    def generator(self, purpose: str, device: torch.device | None = None) -> torch.Generator:
        """A generator on the run's device (or ``device``: a streamed data set draws its batch
        order on the CPU, ``images.index_device``), seeded from the cell seed and ``purpose``."""
        return make_generator(self.seed, purpose, device or self.device)


@dataclass
class ProtocolResult:
    """``predict(split)`` gives predicted class indices for a split (called once on test);
    ``val_accuracy`` is the accuracy on validation of the chosen model; ``details`` goes into
    the record (chosen layer, per-layer accuracies, chosen step, ...).

    ``extra_predictions`` are further predictors whose test accuracy is recorded for analysis
    only (the linear probe's every stage, for a layer-wise table); they choose nothing."""

    predict: Callable[[Split], torch.Tensor]
    val_accuracy: float | None     # None: no validation image, the choice was fixed
    details: dict[str, Any] = field(default_factory=dict)
    extra_predictions: dict[str, Callable[[Split], torch.Tensor]] = field(default_factory=dict)


@dataclass(frozen=True)
class Work:
    """A cell's work in images through the network (:meth:`EvaluationProtocol.work`):
    ``train`` labeled images in training steps (forward and backward), ``predict`` images
    in forward passes only, and ``steps`` training steps of ``batch`` labeled images (each
    consistency task adds its unlabeled batch, from ``unlabeled_batch``, to every one);
    ``earliest``: the smallest share of that work a run can end after (a protocol that stops
    early when validation stops improving; 1.0 for one that always runs its budget)."""

    train: int = 0
    predict: int = 0
    steps: int = 0
    batch: int = 0               # labeled images per step
    unlabeled_batch: int = 0     # the protocol's unlabeled images per step (a task may scale it)
    earliest: float = 1.0        # the share of it a run may stop at (early stopping), at least


class EvaluationProtocol(Configurable):
    """Base class of every evaluation protocol.

    Class attributes:
        name: the name users type (``--protocols NAME``).
        description: one line for ``sslbench list protocols``.
        defaults, presets: the protocol's options (:mod:`sslbench.options`): its budget,
            grids and learning rates, set with ``--opt NAME.KEY=VALUE``; read them from
            ``self.options``.
        trains_backbone: the protocol trains the network, so consistency tasks
            (``rotation+uda``) apply; protocols that do not are shown as "n/a" for them.

    Put what you chose in ``details["chosen"]`` (a few words: "stage 3", "step 900"; reports
    show it) and whether your training converged in ``details["converged"]``.
    """

    kind: ClassVar[str] = "protocol"
    description: ClassVar[str] = ""
    trains_backbone: ClassVar[bool] = False

    def evaluate(self, ctx: EvalContext) -> ProtocolResult:
        raise NotImplementedError

    def check_backbone(self, backbone: str, stage_dims: list[int]) -> None:
        """Called before anything runs, once for each backbone of the sweep, with the channels
        of its stages (``stage_dims``; stage 1 is the first): fail with
        ``self.require(key, ok, rule)`` when an option cannot work on that backbone (a
        stage it lacks), so that the user reads one line at the start rather than finding
        every cell failed after the pretraining. Default: nothing to check."""

    def summary(self) -> str:
        """A few words on how this protocol trains and chooses, from its options, for the
        caption of every report ("60 epochs of the labeled images, at least 500 steps")."""
        return ", ".join(f"{k} {v}" for k, v in self.options.items())

    def work(self, n_train: int, n_val: int, n_test: int) -> Work:
        """What one cell costs in images through the network, for ``sslbench run --dry-run``
        to estimate before running: a protocol on cached frozen features (the default)
        trains nothing on images, its features being extracted once per checkpoint; one that
        trains the network says how many labeled images it trains on and how many it only
        predicts (validation checks, the test split)."""
        return Work()
