"""sslbench's presets: ``quick`` (the default: a whole sweep on a laptop CPU in minutes),
``standard`` (the papers' scale: ResNet-18, long schedules; wants a GPU) and
``rotnet-cifar10`` (RotNet's own CIFAR-10 setting, to re-run the paper's semi-supervised
table; wants a GPU).

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

# Gidaris et al. 2018, from the authors' configs (gidariss/FeatureLearningRotNet,
# config/CIFAR10_RotNet_NIN4blocks.py and the ConvClassifier/supervised_NIN configs): NIN with
# 4 blocks, 200 epochs of rotation at batch 128, SGD lr 0.1 x 0.2 after 60/120/160 epochs,
# weight decay 5e-4; "RotNet + conv" is the nonlinear protocol's defaults (conv head on block
# 2, 100 epochs of 50,000 images) and "supervised" is finetune's options for this preset.
# Run it with --labels-per-class 20,100,400,1000,5000; docs/evaluation.md lists what differs.
ROTNET_CIFAR10 = Preset(
    "rotnet-cifar10", "RotNet's CIFAR-10 setting: NIN, 4 blocks, 200 epochs of rotation, "
    "conv classifier on block 2 (for a GPU)",
    settings={"backbone": "nin", "resolution": 32, "pretext_holdout": 500,
              "pretrain_epochs": 200, "pretrain_batch_size": 128, "pretrain_lr": 0.1,
              "pretrain_lr_drops": [0.3, 0.6, 0.8], "weight_decay": 5e-4},
    datasets=("cifar10",), tasks=("rotation",), protocols=("nonlinear", "finetune"))


@sslbench.hookimpl
def sslbench_presets() -> list[Preset]:
    return [QUICK, STANDARD, ROTNET_CIFAR10]
