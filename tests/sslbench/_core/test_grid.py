"""The grid's units of work: the cells that share one pretraining, plain data that another
process can receive."""

import pickle

from sslbench._core.grid import Cell, units_of


def test_units_group_the_cells_of_one_pretraining_in_grid_order():
    cells = [Cell("digits", "smallcnn", task, fraction, protocol, seed)
             for task in ("scratch", "rotation") for seed in (0, 1)
             for fraction in (0.1, 1.0) for protocol in ("linear", "finetune")]
    units = units_of(cells)
    assert [(u.task, u.seed, len(u.cells)) for u in units] == [
        ("scratch", 0, 4), ("scratch", 1, 4), ("rotation", 0, 4), ("rotation", 1, 4)]
    assert all(c.task == u.task and c.seed == u.seed for u in units for c in u.cells)
    assert units[2].id == "digits__smallcnn__rotation__s0"
    again = pickle.loads(pickle.dumps(units))            # a unit travels to another process
    assert again == units


def test_finished_cells_are_not_in_any_unit():
    cells = [Cell("digits", "smallcnn", "rotation", 1.0, p, 0) for p in ("linear", "finetune")]
    cells[0].done = True
    (unit,) = units_of([c for c in cells if not c.done])
    assert [c.protocol for c in unit.cells] == ["finetune"]
