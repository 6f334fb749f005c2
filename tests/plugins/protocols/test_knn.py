"""The k-nearest-neighbour protocol (sslbench_plugins.protocols.knn)."""

from test_linear import blobs
from sslbench_plugins.protocols.knn import knn_predict


def test_knn_recovers_labels_of_blobs():
    x, y = blobs()
    xq, yq = blobs(seed=0)
    assert (knn_predict(x, y, xq + 0.01, k=5, num_classes=3) == yq).float().mean() > 0.95
