"""``linear``: a frozen backbone and a multinomial logistic regression on its features.

Features of every stage are extracted once per checkpoint and cached (``Split.features``).
For each stage and each L2 strength of the ``l2`` grid (an option), the probe is fitted full-batch
with L-BFGS on the standardised features of the labeled subset, the grid walked from the
strongest L2 to the weakest with warm starts (:func:`fit_l2_path`); the (stage, L2) pair with
the best validation accuracy is kept. The record keeps every stage's validation and test accuracy;
the headline number is the test accuracy of the stage chosen on validation.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

import sslbench
from sslbench.options import Range
from sslbench.protocol import EvalContext, EvaluationProtocol, ProtocolResult, Split
from sslbench.training import accuracy


class Standardiser:
    """Per-dimension standardisation with statistics of the probe's training features."""

    def __init__(self, features: torch.Tensor) -> None:
        self.mean = features.mean(0)
        std = features.std(0) if len(features) > 1 else torch.ones_like(self.mean)
        self.std = std.clamp_min(1e-6)

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std


def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float,
                            max_iter: int, start: tuple[torch.Tensor, torch.Tensor] | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Multinomial logistic regression, ``mean CE + l2/2 ||W||^2``, full-batch L-BFGS on the
    features' device, from zeros or from ``start`` (W, b). Returns (W (D, C), b (C,),
    converged): ``converged`` is False when the solver stopped at ``max_iter`` iterations
    instead of at its tolerance."""
    w, b, iterations = _lbfgs(x, y, num_classes, l2, max_iter, start)
    return w, b, iterations < max_iter


def _lbfgs(x, y, num_classes, l2, max_iter, start):
    if start is None:
        w = torch.zeros(x.shape[1], num_classes, device=x.device)
        b = torch.zeros(num_classes, device=x.device)
    else:
        w, b = (t.detach().clone() for t in start)
    w.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=20,
                            tolerance_grad=1e-7, tolerance_change=1e-9,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    iterations = opt.state[opt._params[0]].get("n_iter", 0)
    return w.detach(), b.detach(), iterations


def fit_l2_path(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2_values: list[float],
                max_iter: int, warm_start: bool = True) -> list[dict]:
    """One probe per L2 strength, in the order of ``l2_values``: each a dict with ``l2``,
    ``w``, ``b``, ``converged`` and ``iterations`` (L-BFGS's).

    With ``warm_start`` the strengths are solved from the strongest to the weakest, each from
    the previous solution (the regularisation path, as glmnet and scikit-learn's
    ``LogisticRegressionCV`` walk it). For ``l2 > 0`` the objective is strictly convex, so a
    solve that reaches the tolerance reaches the same optimum from either start; the
    strongest is solved from zeros, and each weaker one starts near its optimum and needs
    fewer iterations. (With ``l2 = 0`` on separable features there is no unique optimum, and
    the path's end is one of them.)"""
    order = sorted(range(len(l2_values)), key=lambda i: -l2_values[i]) if warm_start \
        else list(range(len(l2_values)))
    fits: dict[int, dict] = {}
    previous = None
    for i in order:
        w, b, iterations = _lbfgs(x, y, num_classes, l2_values[i], max_iter,
                                  previous if warm_start else None)
        fits[i] = {"l2": l2_values[i], "w": w, "b": b, "iterations": iterations,
                   "converged": iterations < max_iter}
        previous = (w, b)
    return [fits[i] for i in range(len(l2_values))]


class LinearProbe(EvaluationProtocol):
    name = "linear"
    description = "frozen backbone, logistic regression on cached features of each stage"
    defaults = {
        "l2": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1],   # weight-decay grid, chosen on validation
        "max_iter": 500,                         # L-BFGS iterations; a probe that hits it is flagged
        "warm_start": True,                      # walk the L2 grid strongest first (fit_l2_path)
    }
    ranges = {"l2": Range(ge=0), "max_iter": Range(ge=1)}
    presets = {"standard": {"l2": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1], "max_iter": 1000}}
    former_settings = {"probe_l2": "l2", "probe_max_iter": "max_iter"}   # sslbench < 0.5

    def summary(self) -> str:
        l2 = ", ".join(f"{v:g}" for v in self.options["l2"])
        return (f"logistic regression on each stage's pooled features, stage and L2 "
                f"({l2}) chosen on validation, L-BFGS up to {self.options['max_iter']} "
                "iterations" + (" (warm-started along the L2 grid)" if self.options["warm_start"]
                                else ""))

    def check_options(self) -> None:
        self.require("l2", bool(self.options["l2"]) and all(v >= 0 for v in self.options["l2"]),
                     "a non-empty list of values >= 0")
        self.require("max_iter", self.options["max_iter"] >= 1, ">= 1")

    def evaluate(self, ctx: EvalContext) -> ProtocolResult:
        train_feats, val_feats = ctx.labeled.features(), ctx.val.features()
        y, y_val = ctx.labeled.labels, ctx.val.labels
        if len(y_val) == 0:
            return self._without_validation(ctx, train_feats, y)
        best = None
        stages = []
        iterations = 0
        with ctx.reporter.training(f"linear probe {len(y)} labels", len(train_feats)) as bar:
            for stage, (ftr, fval) in enumerate(zip(train_feats, val_feats)):
                stage_best = self._stage(stage, ftr, fval, y, y_val, ctx.num_classes)
                iterations += stage_best.pop("iterations")
                stages.append(stage_best)
                if best is None or stage_best["val_accuracy"] > best["val_accuracy"]:
                    best = stage_best
                bar.epoch_done(stage + 1, None, len(y) / max(1e-9, stage_best["seconds"]),
                               val=stage_best["val_accuracy"])

        def predictor(choice):
            def predict(split: Split) -> torch.Tensor:
                x = choice["norm"](split.features()[choice["stage"] - 1])
                return (x @ choice["w"] + choice["b"]).argmax(1)
            return predict

        return ProtocolResult(
            predict=predictor(best), val_accuracy=best["val_accuracy"],
            details={"chosen_stage": best["stage"], "chosen_l2": best["l2"],
                     "chosen": f"stage {best['stage']}", "chosen_on": "validation",
                     # the chosen probe's solver reached its tolerance within max_iter
                     "converged": bool(best["converged"]),
                     "solver_iterations": iterations,       # every stage's, every L2's
                     "stages": [{k: s[k] for k in ("stage", "l2", "val_accuracy")}
                                for s in stages]},
            extra_predictions={f"stage{s['stage']}": predictor(s) for s in stages})

    def _without_validation(self, ctx: EvalContext, train_feats: list[torch.Tensor],
                            y: torch.Tensor) -> ProtocolResult:
        """A budget too small to hold validation images (one label per class): nothing can
        be chosen on validation, so the choice is fixed in advance (docs/evaluation.md):
        the last stage, as the standard linear probe, and the median of the L2 grid."""
        grid = sorted(self.options["l2"])
        l2 = grid[(len(grid) - 1) // 2]
        stage = len(train_feats)
        norm = Standardiser(train_feats[-1])
        [fit] = list(fit_l2_path(norm(train_feats[-1]), y, ctx.num_classes, [l2],
                                 self.options["max_iter"], False))

        def predict(split: Split) -> torch.Tensor:
            return (norm(split.features()[-1]) @ fit["w"] + fit["b"]).argmax(1)

        return ProtocolResult(
            predict=predict, val_accuracy=None,
            details={"chosen_stage": stage, "chosen_l2": l2, "chosen_on": "preset",
                     "chosen": f"stage {stage} (no validation image: the last stage and the "
                               f"median L2, {l2:g})",
                     "converged": bool(fit["converged"]),
                     "solver_iterations": fit["iterations"], "stages": []})

    def _stage(self, stage: int, ftr: torch.Tensor, fval: torch.Tensor, y: torch.Tensor,
               y_val: torch.Tensor, num_classes: int) -> dict:
        """The best probe of one stage over the L2 grid (chosen on validation)."""
        started = time.perf_counter()
        norm = Standardiser(ftr)
        xtr, xval = norm(ftr), norm(fval)
        stage_best, iterations = None, 0
        for fit in fit_l2_path(xtr, y, num_classes, list(self.options["l2"]),
                               self.options["max_iter"], self.options["warm_start"]):
            iterations += fit["iterations"]
            acc = accuracy((xval @ fit["w"] + fit["b"]).argmax(1), y_val)
            if stage_best is None or acc > stage_best["val_accuracy"]:
                stage_best = {"stage": stage + 1, "l2": fit["l2"], "val_accuracy": acc,
                              "norm": norm, "w": fit["w"], "b": fit["b"],
                              "converged": fit["converged"]}
        return {**stage_best, "iterations": iterations,
                "seconds": time.perf_counter() - started}


@sslbench.hookimpl
def sslbench_protocols():
    return [LinearProbe]
