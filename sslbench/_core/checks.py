"""The two checks every pretraining gets: its pretext accuracy on images it never saw, and its
shortcut control.

A pretext task can be solved without learning what its paper meant (touching jigsaw tiles, a
patch's position in the image), and a pretraining can leave a network that learned nothing
(0.7% on 3,107 exemplar classes). So after every pretraining the runner measures, and records:

* ``heldout``: the task's accuracy on pool images kept out of pretraining
  (:meth:`PretextTask.evaluation_images`), against chance, with a near-chance flag
  (:func:`sslbench._core.pretraining.evaluate_pretext`);
* ``control``: the task's :class:`~sslbench.task.ShortcutControl`, a variant without the cue
  that matters (or with only a trivial one), measured on the trained network or on a fresh
  network trained on the variant with the same budget. A task that tests what it claims
  leaves it at chance.

``sslbench show TASK --check`` runs the same checks on one pretraining, outside a sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..images import Images
from .progress import Reporter
from .seeding import seed_everything
from ..task import PretextTask
from ..training import to_device
from .pretraining import evaluate_pretext, pretrain


def pretraining_checks(task: PretextTask, backbone: nn.Module, head: nn.Module | None,
                       prepared: Images, heldout: Images, pretraining: Images,
                       new_backbone: Callable[[], nn.Module], settings: dict[str, Any],
                       device: torch.device, dtype: torch.dtype | None, seed: int,
                       reporter: Reporter) -> dict[str, Any]:
    """``{"heldout": ..., "control": ...}`` for a trained ``backbone`` and ``head`` of
    ``task``. ``new_backbone()`` gives the seed's fresh initialisation (for a control that
    retrains on ``pretraining``, the images the task was trained on)."""
    images, uses_index = task.evaluation_images(heldout, prepared)
    held = evaluate_pretext(task, backbone, head, images, uses_index, device, dtype, seed)
    control = task.control()
    if control is None:
        return {"heldout": held, "control": None}
    if control.retrain:
        backbone = to_device(new_backbone(), device)
        seed_everything(seed, f"control:{task.name}")
        result = pretrain(control.task, backbone, pretraining, settings, device, dtype, seed,
                          reporter, label=f"control {task.name} s{seed}")
        head, prepared = result["head"], result["prepared"]
    images, uses_index = control.task.evaluation_images(heldout, prepared)
    measured = evaluate_pretext(control.task, backbone, head, images, uses_index, device,
                                dtype, seed)
    return {"heldout": held,
            "control": {"name": control.name, "description": control.description,
                        "retrained": control.retrain, "expect": control.expect,
                        **(measured or {})}}
