"""A task's own pretraining schedule and its hook after each optimiser step (room for BYOL,
MoCo, DINO), and the LARS optimiser such methods train with."""

from __future__ import annotations


import pytest
import torch

from sslbench_plugins.presets import QUICK
from sslbench.images import ResidentImages
from sslbench._core.progress import Reporter
from sslbench.task import PretrainSchedule
from sslbench._core.pretraining import pretrain
from sslbench.training import LARS, effective_schedule, make_optimizer
from sslbench_plugins.backbones.smallcnn import SmallCNN
from sslbench_plugins.tasks.rotation import Rotation


class Scheduled(Rotation):
    name = "scheduled"

    def __init__(self, **options):
        super().__init__(**options)
        self.steps: list[tuple[int, int]] = []

    def schedule(self):
        return PretrainSchedule(epochs=3, batch_size=8, lr=0.01, optimizer="adamw",
                                warmup_epochs=1)

    def after_step(self, backbone, head, step, total_steps):
        assert not torch.is_grad_enabled()
        self.steps.append((step, total_steps))


def test_a_tasks_schedule_replaces_the_sweeps_and_after_step_sees_every_step():
    task = Scheduled()
    settings = QUICK.resolved_settings()
    images = ResidentImages(torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8))
    torch.manual_seed(0)
    result = pretrain(task, SmallCNN((8, 16)), images, settings, torch.device("cpu"), None,
                      seed=0, reporter=Reporter(), label="test")
    assert len(result["history"]) == 3                       # the task's epochs, not the preset's
    total = 3 * (40 // 8)
    assert result["schedule"] == {"epochs": 3, "batch_size": 8, "lr": 0.01,
                                  "weight_decay": settings["weight_decay"],
                                  "optimizer": "adamw", "warmup_epochs": 1, "lr_drops": [],
                                  "steps": total, "warmup_steps": 5}
    assert task.steps == [(k, total) for k in range(1, total + 1)]


def test_lr_drops_replace_warm_up_and_cosine_with_rotnets_steps():
    settings = {**QUICK.resolved_settings(), "pretrain_epochs": 4, "pretrain_batch_size": 8,
                "pretrain_lr_drops": [0.5, 0.75]}
    images = ResidentImages(torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8))
    torch.manual_seed(0)
    backbone = SmallCNN((8, 16))
    result = pretrain(Rotation(), backbone, images, settings, torch.device("cpu"), None,
                      seed=0, reporter=Reporter(), label="test")
    assert result["schedule"]["lr_drops"] == [0.5, 0.75]
    assert result["schedule"]["warmup_steps"] == 0
    # the checkpoint's key holds the schedule: another drop list is another checkpoint
    other = effective_schedule(Rotation(), {**settings, "pretrain_lr_drops": [0.3]})
    assert other != effective_schedule(Rotation(), settings)


def test_the_default_schedule_is_the_sweeps():
    settings = QUICK.resolved_settings()
    plan = effective_schedule(Rotation(), settings)
    assert (plan["epochs"], plan["batch_size"], plan["lr"], plan["optimizer"]) == (
        settings["pretrain_epochs"], settings["pretrain_batch_size"], settings["pretrain_lr"],
        "sgd")


def test_lars_step_matches_a_hand_computation():
    torch.manual_seed(0)
    w = torch.randn(5, 3, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    grad_w, grad_b = torch.randn(5, 3), torch.randn(5)
    lr, wd, trust = 0.5, 1e-2, 1e-3
    start_w, start_b = w.detach().clone(), b.detach().clone()
    opt = LARS([{"params": [w], "weight_decay": wd},
                {"params": [b], "weight_decay": 0.0, "lars_exclude": True}], lr=lr, trust=trust)
    for _ in range(2):                                   # the second step uses the momentum
        w.grad, b.grad = grad_w.clone(), grad_b.clone()
        opt.step()
    # by hand: u = (g + wd w) * trust |w| / |g + wd w|; m = 0.9 m + u; w -= lr m
    ew, eb, mw, mb = start_w.clone(), start_b.clone(), None, None
    for _ in range(2):
        u = grad_w + wd * ew
        u = u * (trust * ew.norm() / u.norm())
        mw = u if mw is None else 0.9 * mw + u
        ew = ew - lr * mw
        mb = grad_b if mb is None else 0.9 * mb + grad_b
        eb = eb - lr * mb
    assert torch.allclose(w.detach(), ew, atol=1e-6) and torch.allclose(b.detach(), eb, atol=1e-6)


def test_make_optimizer_knows_three_kinds_and_names_them_otherwise():
    from sslbench.errors import SSLBenchError
    model = torch.nn.Linear(3, 2)
    kinds = {k: type(make_optimizer([model], 0.1, 0.0, torch.device("cpu"), k))
             for k in ("sgd", "adamw", "lars")}
    assert kinds == {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW, "lars": LARS}
    with pytest.raises(SSLBenchError, match="optimizers: sgd, adamw, lars"):
        make_optimizer([model], 0.1, 0.0, torch.device("cpu"), "adam")


BAD_SCHEDULE = '''
import sslbench
from sslbench.task import PretrainSchedule
from sslbench_plugins.tasks.rotation import Rotation


class Rushed(Rotation):
    name = "rushed"

    def schedule(self):
        return PretrainSchedule(optimizer="adagrad")


@sslbench.hookimpl
def sslbench_tasks():
    return [Rushed]
'''


def test_a_bad_schedule_is_one_line_before_the_grid(fast_run, image_folder, tmp_path):
    plugin = tmp_path / "rushed.py"
    plugin.write_text(BAD_SCHEDULE)
    status, _, err = fast_run("--plugin", str(plugin), "--dataset",
                              f"imagefolder:{image_folder}", "--tasks", "rushed")
    assert status == 2
    assert err.strip() == ("sslbench: error: task 'rushed' asks for optimizer 'adagrad'; "
                           "optimizers: sgd, adamw, lars")
