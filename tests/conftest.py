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
