"""``knn``: weighted k-nearest-neighbour classification on cached frozen features.

Cosine similarity on L2-normalised features; each of the k nearest labeled images votes with
weight exp(similarity / 0.07), as in Wu et al. (2018). The stage and k are chosen on
validation. Cheap: no training at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import sslbench
from sslbench.options import Range
from sslbench.protocol import EvalContext, EvaluationProtocol, ProtocolResult, Split
from sslbench.training import accuracy

TEMPERATURE = 0.07


def knn_predict(train: torch.Tensor, labels: torch.Tensor, query: torch.Tensor, k: int,
                num_classes: int, chunk: int = 1024) -> torch.Tensor:
    train = F.normalize(train, dim=1)
    k = min(k, len(train))
    out = []
    for i in range(0, len(query), chunk):
        sims = F.normalize(query[i:i + chunk], dim=1) @ train.T
        top, idx = sims.topk(k, dim=1)
        votes = torch.zeros(len(top), num_classes, device=query.device)
        votes.scatter_add_(1, labels[idx], (top / TEMPERATURE).exp())
        out.append(votes.argmax(1))
    return torch.cat(out)


class KNNProbe(EvaluationProtocol):
    name = "knn"
    description = "weighted k-nearest neighbours on cached features (k and stage chosen on val)"
    defaults = {"k": [1, 5, 10, 20]}            # the k grid, chosen on validation with the stage
    ranges = {"k": Range(ge=1)}
    former_settings = {"knn_k": "k"}             # the sweep setting of sslbench < 0.5
    presets = {"standard": {"k": [1, 5, 10, 20, 50]}}

    def summary(self) -> str:
        return (f"weighted kNN on each stage's features, stage and k "
                f"({', '.join(map(str, self.options['k']))}) chosen on validation")

    def check_options(self) -> None:
        self.require("k", bool(self.options["k"]) and all(k >= 1 for k in self.options["k"]),
                     "a non-empty list of k >= 1")

    def evaluate(self, ctx: EvalContext) -> ProtocolResult:
        train_feats, val_feats = ctx.labeled.features(), ctx.val.features()
        y = ctx.labeled.labels
        if len(ctx.val) == 0:
            # nothing to choose with (docs/evaluation.md): the last stage, the median k
            grid = sorted(self.options["k"])
            stage, k = len(train_feats) - 1, grid[(len(grid) - 1) // 2]
            return ProtocolResult(
                lambda split: knn_predict(train_feats[stage], y, split.features()[stage], k,
                                          ctx.num_classes), None,
                {"chosen_stage": stage + 1, "chosen_k": k, "chosen_on": "preset",
                 "chosen": f"stage {stage + 1}, k={k} (no validation image: the last "
                           "stage and the median k)"})
        best = None
        for stage, (ftr, fval) in enumerate(zip(train_feats, val_feats)):
            for k in self.options["k"]:
                acc = accuracy(knn_predict(ftr, y, fval, k, ctx.num_classes), ctx.val.labels)
                if best is None or acc > best[0]:
                    best = (acc, stage, k)
        acc, stage, k = best

        def predict(split: Split) -> torch.Tensor:
            return knn_predict(train_feats[stage], y, split.features()[stage], k,
                               ctx.num_classes)

        return ProtocolResult(predict, acc, {"chosen_stage": stage + 1, "chosen_k": k,
                                             "chosen": f"stage {stage + 1}, k={k}",
                                             "chosen_on": "validation"})


@sslbench.hookimpl
def sslbench_protocols():
    return [KNNProbe]
