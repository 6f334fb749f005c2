"""The types the lifecycle hooks receive (:mod:`sslbench.hookspecs`), public:

* :class:`SweepConfig`: everything that defines a sweep (``sslbench_sweep_start`` and
  ``sslbench_sweep_finish`` receive it): the grid's axes (data sets, backbones, tasks,
  budgets, protocols, seeds), the preset and settings, the plugins' options, where results
  and caches go and which executor runs the units;
* :class:`Cell`: one point of the grid, one record (``sslbench_cell_start`` and
  ``sslbench_cell_finish``): data set, backbone, task, :class:`Budget`, protocol, seed,
  split seed, its configuration hash, and ``id``, the record's name;
* :class:`Budget`: a label budget, a fraction of each class, labels per class or labels in
  all, with the ``label`` reports print ("10%", "20/class", "250 labels").

They are read, not made, by plugins; their fields are kept stable (a removed one gets a
deprecation period), their construction is sslbench's.
"""

from __future__ import annotations

from ._core.budgets import Budget
from ._core.config import SweepConfig
from ._core.grid import Cell

__all__ = ['SweepConfig', 'Cell', 'Budget']
