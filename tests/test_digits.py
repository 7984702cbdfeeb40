"""The digits data set, read from scikit-learn's file without importing scikit-learn, is load_digits' data."""
import subprocess
import sys

import numpy as np


def test_read_digits_is_load_digits_and_imports_neither_sklearn_nor_pandas():
    from sklearn.datasets import load_digits

    from runkit.data.digits import read_digits
    images, target = read_digits()
    bunch = load_digits()
    assert images.dtype == bunch.images.dtype and np.array_equal(images, bunch.images)
    assert target.dtype == bunch.target.dtype and np.array_equal(target, bunch.target)
    loaded = subprocess.run([sys.executable, "-c", "import sys; from runkit.data.digits import read_digits; "
                             "read_digits(); print(sorted({'sklearn', 'pandas'} & set(sys.modules)))"],
                            capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
