"""The embedded digits data set (sslbench_plugins.datasets.digits)."""

RES = 16   # the load fixture's resolution (tests/conftest.py)


def test_digits_is_embedded(load):
    data = load("digits")
    assert data.num_classes == 10 and len(data.train_labels) + len(data.test_labels) == 1797
    assert data.train_images.shape[1:] == (3, RES, RES)


def test_digits_read_without_importing_sklearn_are_load_digits():
    """The bundled file read directly gives exactly scikit-learn's arrays."""
    import subprocess
    import sys

    import numpy as np
    from sklearn.datasets import load_digits
    from sslbench_plugins.datasets.digits import read_digits
    images, target = read_digits()
    reference = load_digits()
    assert np.array_equal(images, reference.images) and np.array_equal(target, reference.target)
    assert images.dtype == reference.images.dtype and target.dtype.kind == "i"
    fresh = subprocess.run([sys.executable, "-c",
                            "import sys; from sslbench_plugins.datasets.digits import read_digits;"
                            " read_digits(); print('sklearn' in sys.modules)"],
                           capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "False"
