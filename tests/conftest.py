"""Test setup: tools run as real processes from this checkout, on PATH, with this checkout's runkit.

PATH gets <repo>/tools and the running interpreter's bin first; PYTHONPATH gets <repo>/lib, so a worktree
tests its own code even when .venv's editable install points elsewhere.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ["PATH"] = os.pathsep.join([str(REPO / "tools"), os.path.dirname(sys.executable), os.environ["PATH"]])
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "lib"), os.environ.get("PYTHONPATH")]))
sys.path.insert(0, str(REPO / "lib"))


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """A fresh RESULTS_DIR and DATA_DIR for the test, exported to the tools it starts."""
    results, data = tmp_path / "results", tmp_path / "data"
    results.mkdir()
    data.mkdir()
    monkeypatch.setenv("RESULTS_DIR", str(results))
    monkeypatch.setenv("DATA_DIR", str(data))
    return results


def tool(*argv, input=None, check=None, timeout=600, **kwargs):
    """Run a tool as a user would; returns the CompletedProcess (text). `check` asserts the exit status."""
    proc = subprocess.run([str(a) for a in argv], input=input, capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    if check is not None:
        assert proc.returncode == check, f"{argv} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread per training process: on a busy 2-core machine the spinning OpenMP threads of
    several processes slow each other down many times over. (Results depend on the thread count, so
    every run a test compares runs with the same.)"""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield


def without_time(rows):
    """History rows without the wall-clock column, which no two runs share."""
    return [{k: v for k, v in row.items() if k != "time"} for row in rows]
