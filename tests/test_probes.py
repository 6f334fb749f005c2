import torch
from sslbench_plugins.protocols.knn import knn_predict
from sslbench_plugins.protocols.linear import fit_logistic_regression


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


def test_knn_recovers_labels_of_blobs():
    x, y = blobs()
    xq, yq = blobs(seed=0)
    assert (knn_predict(x, y, xq + 0.01, k=5, num_classes=3) == yq).float().mean() > 0.95
