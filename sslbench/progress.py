"""What a task or protocol reports its training progress to: ``EvalContext.reporter`` is a
:class:`Reporter`; ``reporter.training(label, epochs)`` gives a :class:`TrainingProgress`
whose ``epoch_done(epoch, loss, images_per_s, inputs_per_s=None, **metrics)`` a plugin calls
after each epoch (or validation check). A plugin receives these; it never makes one (the
command line's progress bars and plain lines are sslbench's own, in ``sslbench._core``).
Re-exported here so that no public contract names a private type, as pytest re-exports the
types its hooks receive."""

from __future__ import annotations

from ._core.progress import Reporter, TrainingProgress

__all__ = ['Reporter', 'TrainingProgress']
