"""The linear probe (sslbench_plugins.protocols.linear): L2-regularised logistic regression,
and its L2 grid walked with warm starts."""

import torch
from sslbench_plugins.protocols.linear import fit_l2_path, fit_logistic_regression


def blobs(n_per_class=30, dim=5, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 4
    x = torch.cat([centres[c] + torch.randn(n_per_class, dim, generator=g) for c in range(classes)])
    y = torch.arange(classes).repeat_interleave(n_per_class)
    return x, y


def test_logistic_regression_separates_blobs_and_l2_shrinks_weights():
    x, y = blobs()
    w, b, _ = fit_logistic_regression(x, y, 3, l2=1e-4, max_iter=100)
    assert ((x @ w + b).argmax(1) == y).float().mean() > 0.95
    w_strong, _, _ = fit_logistic_regression(x, y, 3, l2=10.0, max_iter=100)
    assert w_strong.norm() < w.norm()


def test_the_warm_started_l2_path_reaches_the_independent_solutions_in_fewer_iterations():
    """Strictly convex for l2 > 0: from zeros or from the stronger neighbour's solution, each
    solve ends at the same optimum (to the solver's tolerance); the walk takes fewer steps.
    Results come back in the grid's order whatever order they were solved in."""
    x, y = blobs(n_per_class=60, dim=20, seed=1)
    x = x + 2.0 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    grid = [1e-3, 1e-1, 1e-2]
    cold = fit_l2_path(x, y, 3, grid, max_iter=500, warm_start=False)
    warm = fit_l2_path(x, y, 3, grid, max_iter=500, warm_start=True)
    assert [f["l2"] for f in cold] == [f["l2"] for f in warm] == grid
    for c, w in zip(cold, warm):
        assert c["converged"] and w["converged"]
        # the softmax ignores a constant added to every bias: compare centred logits
        logits = [x @ f["w"] + f["b"] for f in (c, w)]
        logits = [z - z.mean(1, keepdim=True) for z in logits]
        assert (logits[0] - logits[1]).abs().max() < 0.05 * logits[0].abs().max()
        assert torch.equal(logits[0].argmax(1), logits[1].argmax(1))
    assert sum(f["iterations"] for f in warm) < sum(f["iterations"] for f in cold)
