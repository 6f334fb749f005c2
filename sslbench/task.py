"""The pretext-task interface.

A pretext task invents labels from the images themselves. sslbench uses a task in one
or both of two ways:

* **pretraining** (``pretrains = True``): before any label is seen, the backbone and the
  task's head are trained on every unlabeled training image with :meth:`PretextTask.pretext_loss`
  (RotNet, jigsaw, ...);
* **consistency / auxiliary loss** (``consistency = True``): while a downstream protocol
  fine-tunes on the labeled subset, each step also draws a batch of unlabeled images and adds
  :meth:`PretextTask.unlabeled_loss` (UDA works only this way; a pretext task can act as an
  auxiliary loss too, as in S4L).

Tasks receive whole batches as float tensors in [0, 1], shape (N, 3, H, W), already on the
run's device, and build their inputs and targets there: there are no per-image transforms in
DataLoader workers. All randomness comes from the ``generator`` argument so that a run on the
CPU is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from .errors import SSLBenchError  # noqa: F401 (tasks raise it from validate)
from .images import Images
from .options import Configurable

__all__ = [
    'TaskStep', 'PretrainSchedule', 'PreviewRow', 'ShortcutControl', 'ConsistencyBatch',
    'ConsistencyContext', 'PretextTask'
]


@dataclass
class TaskStep:
    """What one step of a task returns: the loss to minimise and, where the task is a
    classification problem, the logits and targets (used to report pretext accuracy)."""

    loss: torch.Tensor
    logits: torch.Tensor | None = None
    targets: torch.Tensor | None = None


@dataclass(frozen=True)
class PretrainSchedule:
    """How a task wants to be pretrained, where it differs from the sweep's settings.

    ``None`` keeps the sweep's value (``pretrain_epochs``, ``pretrain_lr``,
    ``pretrain_batch_size``, ``weight_decay``). ``lr_per_256`` gives the learning rate per
    256 images of the batch instead (the linear scaling rule of Goyal et al. 2017, which
    BYOL, SimCLR and MoCo state their rates in): ``lr = lr_per_256 * batch_size / 256``.
    ``optimizer`` is ``"sgd"`` (Nesterov momentum 0.9, the default), ``"adamw"`` or ``"lars"``
    (You et al. 2017, as BYOL and SimCLR use it: momentum 0.9 with a layer-wise trust ratio
    of 0.001, biases and normalisation weights left out of the adaptation and of weight
    decay). ``warmup_epochs`` is the linear warm-up before the cosine decay (``None``: a
    tenth of training, at most five epochs). The schedule that ran is written into the
    pretraining record; the checkpoint key holds the task's options and code, from which the
    schedule follows."""

    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    weight_decay: float | None = None
    optimizer: str = "sgd"
    lr_per_256: float | None = None
    warmup_epochs: int | None = None


@dataclass
class PreviewRow:
    """One row of ``sslbench show``: the inputs a task builds from one image, each a float
    (3, h, w) tensor in [0, 1], with the target written under it."""

    images: list[torch.Tensor]
    captions: list[str]


@dataclass
class ShortcutControl:
    """A check that a task is not solved by a trivial cue (``PretextTask.control``).

    ``task`` is a variant of the task from which the cue under test has been removed or
    isolated (relpatch: the neighbour patch alone; jigsaw: tiles whose pixels are shuffled;
    rotation: rotation-symmetric images). Its held-out pretext accuracy is measured either on
    the trained network (``retrain=False``) or after training a fresh network on it with the
    same budget (``retrain=True``), and compared with chance: a task that tests what its paper
    tests gives ``expect`` (``"chance"``).
    """

    name: str
    description: str
    task: "PretextTask"
    retrain: bool = False
    expect: str = "chance"


@dataclass
class ConsistencyBatch:
    """What a consistency task adds to fine-tuning's single forward pass: ``inputs`` (float
    images the size of the labeled batch's) are concatenated with the labeled batch, so that
    batch normalisation sees one batch as in UDA's code; ``loss`` turns their backbone
    features (same order) into the task's loss. ``metrics`` holds detached scalars the loss
    wants reported (UDA's mask rate), averaged over each evaluation period in the record."""

    inputs: torch.Tensor
    loss: Callable[[torch.Tensor], torch.Tensor]
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class ConsistencyContext:
    """What a task acting as an extra loss during fine-tuning may use.

    ``classifier`` maps backbone features to class logits (UDA needs the model's class
    predictions); ``step``/``total_steps`` drive schedules such as training-signal annealing.
    """

    backbone: nn.Module
    head: nn.Module | None
    classifier: nn.Module
    step: int
    total_steps: int
    num_classes: int
    generator: torch.Generator


class PretextTask(Configurable):
    """Base class of every pretext task. Subclass it and register the subclass through the
    :func:`~sslbench.hookspecs.sslbench_tasks` hook.

    Class attributes:
        name: the name users type (``--tasks NAME``); letters, digits, ``-`` and ``_``.
        description: one line for ``sslbench list tasks``.
        defaults: every option with its default; ``--opt NAME.KEY=VALUE`` (or
            ``--task-opt``) overrides them and the final values are written into each
            result record (:mod:`sslbench.options`). ``presets`` may give other values per
            sweep preset.
        pretrains: the task has a pretraining stage.
        consistency: the task can act as an extra loss on unlabeled images during
            fine-tuning (``--tasks rotation+uda``).
        uses_index: :meth:`pretext_loss` is also given ``index``, the positions of the batch
            in the images :meth:`prepare` returned (exemplar's surrogate class labels).
        references: published results, shown beside sslbench's own in reports: dicts with
            ``paper``, ``dataset``, ``backbone``, ``protocol``, ``labels`` (count),
            ``accuracy`` (%) and ``source`` (where the number is printed).
    """

    kind: ClassVar[str] = "task"
    description: ClassVar[str] = ""
    pretrains: ClassVar[bool] = True
    consistency: ClassVar[bool] = False
    uses_index: ClassVar[bool] = False
    references: ClassVar[list[dict[str, Any]]] = []

    def validate(self, resolution: int) -> None:
        """Refuse a resolution the task cannot work at (raise :class:`SSLBenchError` with one
        line saying what would work); called for every task before a sweep starts."""

    def prepare(self, images: Images, generator: torch.Generator) -> Images | torch.Tensor:
        """Called once before pretraining with every unlabeled image; returns the images to
        pretrain on. ``images`` may be held on the device or streamed
        (:mod:`sslbench.images`); either way ``len(images)`` and ``images[index]`` (a uint8
        tensor on ``images.device``) work. Override to pick a subset or to compute data
        statistics (exemplar does both, returning its subset as a tensor); the default
        uses them all."""
        return images

    def build_head(self, backbone: nn.Module) -> nn.Module | None:
        """The head that sits on the backbone's pooled features (``backbone.feature_dim``)."""
        raise NotImplementedError

    def pretext_loss(
        self, backbone: nn.Module, head: nn.Module, images: torch.Tensor,
        generator: torch.Generator,
    ) -> TaskStep:
        """Make inputs and targets from a batch of unlabeled images and return the loss."""
        raise NotImplementedError

    def evaluation_images(self, heldout: Images, prepared: Images) -> tuple[Images, bool]:
        """The images on which the pretext accuracy of a trained checkpoint is measured, and
        whether :meth:`pretext_loss` gets their ``index`` (positions in ``prepared``, the
        images :meth:`prepare` returned). The default: pool images pretraining never saw.
        Exemplar, whose classes are its training images, measures fresh views of them."""
        return heldout, False

    def control(self) -> ShortcutControl | None:
        """The task's shortcut control (:class:`ShortcutControl`), or None."""
        return None

    def schedule(self) -> PretrainSchedule:
        """The task's own pretraining schedule (:class:`PretrainSchedule`); the default keeps
        the sweep's settings. A method with its own recipe (BYOL: LARS, a large learning rate,
        many epochs) returns it here, usually from its options."""
        return PretrainSchedule()

    def after_step(self, backbone: nn.Module, head: nn.Module | None, step: int,
                   total_steps: int) -> None:
        """Called after every pretraining optimiser step (``step`` counts from 1 to
        ``total_steps``), under ``torch.no_grad()``: the place for a momentum (EMA) teacher's
        update, as in BYOL, MoCo or DINO, or for anything else a method does between steps.
        The default does nothing."""

    def supervised_loss(self, logits: torch.Tensor, labels: torch.Tensor,
                        ctx: ConsistencyContext) -> torch.Tensor | None:
        """Replace fine-tuning's supervised loss (UDA's training-signal annealing); ``None``
        keeps the usual cross-entropy."""
        return None

    def unlabeled_batch_size(self, labeled_batch_size: int, default: int) -> int:
        """How many unlabeled images per fine-tuning step (UDA: a ratio of the labeled batch)."""
        return default

    def consistency_batch(self, ctx: ConsistencyContext,
                          images: torch.Tensor) -> ConsistencyBatch | None:
        """The inputs this task adds to fine-tuning's forward pass and the loss made from
        their features (:class:`ConsistencyBatch`); ``None`` (the default) makes the
        protocol call :meth:`unlabeled_loss` instead, with a forward pass of its own."""
        return None

    def unlabeled_loss(self, ctx: ConsistencyContext, images: torch.Tensor) -> torch.Tensor:
        """Extra loss on a batch of unlabeled images during fine-tuning.

        The default uses the pretext loss as an auxiliary objective (S4L-style); consistency
        methods such as UDA override it to use ``ctx.classifier``.
        """
        return self.pretext_loss(ctx.backbone, ctx.head, images, ctx.generator).loss

    def preview(self, images: torch.Tensor, generator: torch.Generator) -> list[PreviewRow]:
        """What the network is asked to do, for ``sslbench show``: one row per image of the
        float batch ``images`` (after :meth:`prepare`), showing the inputs the task builds
        and their targets."""
        raise NotImplementedError(f"task {self.name!r} has no preview")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"
