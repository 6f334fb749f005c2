"""Held-out pretext accuracy for a task whose targets are positions in the batch (BYOL's:
which image's other view matches): its number of target classes is the batch's size, so
the last, shorter batch has fewer. The flowers sweep's BYOL pretrainings failed here (345
held-out images: batches of 256 and 89) before the counts were added by position."""

import torch
from torch import nn

from sslbench.images import ResidentImages
from sslbench.task import PretextTask, TaskStep
from sslbench._core.pretraining import evaluate_pretext


class ConstantRetrieval(PretextTask):
    """Every image matches every other equally: the logits ignore the input, so argmax picks
    position 0, right once per batch, which is what chance is for retrieval."""

    name = "constant-retrieval"

    def pretext_loss(self, backbone, head, images, generator):
        n = len(images)
        logits = torch.zeros(n, n)
        targets = torch.arange(n)
        return TaskStep(nn.functional.cross_entropy(logits, targets), logits, targets)


def test_retrieval_targets_with_a_shorter_last_batch_are_counted_by_position():
    images = ResidentImages(torch.zeros(10, 3, 8, 8, dtype=torch.uint8))
    result = evaluate_pretext(ConstantRetrieval(), nn.Identity(), None, images, False,
                              torch.device("cpu"), None, 0, batch_size=4)
    # batches of 4, 4 and 2: one right answer each, and positions 0 and 1 are each the
    # target three times, the most frequent
    assert result["n"] == 10
    assert result["accuracy"] == 0.3 and result["chance"] == 0.3
    assert result["near_chance"]
