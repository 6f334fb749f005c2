"""The embedded digits data set (sslbench_plugins.datasets.digits)."""

RES = 16   # the load fixture's resolution (tests/conftest.py)


def test_digits_is_embedded(load):
    data = load("digits")
    assert data.num_classes == 10 and len(data.train_labels) + len(data.test_labels) == 1797
    assert data.train_images.shape[1:] == (3, RES, RES)
