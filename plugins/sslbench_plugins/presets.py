"""sslbench's two presets: ``quick`` (the default: a whole sweep on a laptop CPU in minutes)
and ``standard`` (the papers' scale: ResNet-18, long schedules; wants a GPU).

Settings not given here keep sslbench's defaults (``sslbench.preset.SETTING_DEFAULTS``);
the protocols' and tasks' own per-preset values (the fine-tuning budget, the probe's grid)
are in their ``presets``.
"""

from __future__ import annotations

import sslbench
from sslbench.preset import Preset

QUICK = Preset(
    "quick", "a laptop CPU: SmallCNN at 32 px, 15 pretraining epochs",
    settings={"backbone": "smallcnn", "resolution": 32, "pretext_holdout": 500,
              "pretrain_epochs": 15, "pretrain_batch_size": 128},
    datasets=("digits",), tasks=("rotation",), protocols=("linear", "finetune"),
    default=True)

STANDARD = Preset(
    "standard", "the papers' scale, for a GPU: ResNet-18, 100 pretraining epochs",
    settings={"backbone": "resnet18", "resolution": 32, "pretext_holdout": 2000,
              "pretrain_epochs": 100, "pretrain_batch_size": 256},
    datasets=("digits",), tasks=("rotation",), protocols=("linear", "finetune"))


@sslbench.hookimpl
def sslbench_presets() -> list[Preset]:
    return [QUICK, STANDARD]
