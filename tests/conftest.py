"""Test setup: tools run as real processes from this checkout, on PATH, with this checkout's runkit.

Installing the package puts the tools in the environment's bin/ (`make env`: .venv/bin), but those copies
come from whichever checkout was installed last, and a worktree may share its .venv with another. So the
tests put first on PATH a folder of shims, one per tool, each running this checkout's tools/TOOL with the
running interpreter, and put <repo>/lib first on PYTHONPATH: a checkout always tests its own code. The
Makefile takes its tools from RUNKIT_BIN, which points at the same shims here.

`requires("rsync", "jq")` marks a test that needs programs which a fresh machine may lack: it is skipped,
with the reason, where one is missing (RUNKIT_TESTS_NEED_ALL=1, which .ci/run sets after installing them
all, turns that skip into a failure). `pytest.mark.slurm` tests need SLURM and root in the same way. A
fixture that finds out at run time calls `skip(reason)` (or `need(*programs)`), which keeps the same rule:
every skip goes through these, so CI never skips silently (tests/test_environment.py checks that no test
skips any other way).
"""
import atexit
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.register_assert_rewrite("helpers")  # tests/helpers' asserts explain their failures as a test's do
REPO = Path(__file__).resolve().parent.parent
# The Markdown a user reads: the README, the pages it links to, each experiment's README. tests/test_docs.py
# checks their links and runs their snippets; other tests find a command or a file's text in them.
DOCS = sorted([REPO / "README.md", REPO / "bench" / "README.md", *(REPO / "docs").rglob("*.md"),
               *(REPO / "experiments").rglob("*.md")])
SLURM_PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")
# Where each program comes from, for the skip reason.
DEBIAN_PACKAGE = {"sshd": "openssh-server", "ssh": "openssh-client", "ssh-keygen": "openssh-client",
                  "munged": "munge", "slurmctld": "slurmctld", "slurmd": "slurmd", "ip": "iproute2",
                  "nsenter": "util-linux", "unshare": "util-linux"}
DEBIAN_PACKAGE.update(dict.fromkeys(("sbatch", "squeue", "scancel", "scontrol", "sinfo"), "slurm-client"))


def _make_shims():
    shims = tempfile.mkdtemp(prefix="runkit-tools-")
    atexit.register(shutil.rmtree, shims, True)
    for name in TOOLS:
        path = os.path.join(shims, name)
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(REPO / 'tools' / name))} \"$@\"\n")
        os.chmod(path, 0o755)
    return shims


sys.path.insert(0, str(REPO / "lib"))
from runkit.cli import TOOLS  # noqa: E402 - this checkout's, from the line above

SHIMS = _make_shims()
os.environ["PATH"] = os.pathsep.join([SHIMS, os.path.dirname(sys.executable), os.environ["PATH"]])
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "lib"), os.environ.get("PYTHONPATH")]))
os.environ["RUNKIT_BIN"] = SHIMS
SESSION_ENV = dict(os.environ)  # before any test changes it: the warm process's environment


def missing(*programs, path=None):
    """The programs not found on PATH (nor in /usr/sbin and /sbin, where daemons such as sshd live)."""
    search = os.pathsep.join([os.environ.get("PATH", "") if path is None else path, "/usr/sbin", "/sbin"])
    return [p for p in programs if not shutil.which(p, path=search)]


NEED_ALL = "RUNKIT_TESTS_NEED_ALL"


def skip(reason, allow_module_level=False):
    """Skip the running test because something it needs is missing; under RUNKIT_TESTS_NEED_ALL=1 (CI, where
    everything is installed) fail instead."""
    if os.environ.get(NEED_ALL) == "1":
        pytest.fail(f"{reason}, but {NEED_ALL}=1 says everything is installed", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


def missing_reason(absent):
    packages = sorted({DEBIAN_PACKAGE.get(p, p) for p in absent})
    return f"needs {', '.join(dict.fromkeys(absent))} (apt-get install {' '.join(packages)}; .ci/run does)"


def need(*programs):
    """In a fixture or a test: skip() with the reason where one of the programs is missing."""
    absent = missing(*programs)
    if absent:
        skip(missing_reason(absent))


def requires(*programs):
    """Mark a test (or a module: `pytestmark = requires(...)`) that runs these programs: skipped where one
    is missing, with the reason."""
    return pytest.mark.requires(*programs)


_MISSING = pytest.StashKey[str]()


def pytest_collection_modifyitems(items):
    for item in items:
        absent = missing(*(p for mark in item.iter_markers("requires") for p in mark.args))
        if item.get_closest_marker("slurm"):
            absent += missing(*SLURM_PROGRAMS)
        if absent:
            reason = missing_reason(absent)
        elif item.get_closest_marker("slurm") and os.geteuid() != 0:
            reason = "the local SLURM cluster (scripts/slurm-cluster) needs root"
        else:
            continue
        if os.environ.get(NEED_ALL) == "1":
            item.stash[_MISSING] = reason  # fails in setup: see below
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_setup(item):
    if _MISSING in item.stash:
        pytest.fail(f"{item.stash[_MISSING]}, but {NEED_ALL}=1 says everything is installed", pytrace=False)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under pytest -n (make test): each test file on one worker, the SLURM tests all on one (helpers/workers.py)."""
    from helpers.workers import ByGroup
    return ByGroup(config, log)


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


@pytest.fixture(scope="session")
def warm():
    """Start `train` forked from the session's warm process (tests/helpers/warm.py says which tests may):
    warm.train(*argv, check=0) as tool("train", *argv, check=0); warm.start(["train", ...]) as a Popen."""
    from helpers.warm import Warm
    runs = Warm(SESSION_ENV)
    yield runs
    runs.close()


@pytest.fixture(scope="session")
def digits_sweep(tmp_path_factory):
    """A real sweep, read by report's page and TensorBoard's HParams tab: gridgen | runbatch -j 2 of 4 digits
    runs of 2 epochs (2 learning rates, 2 seeds), one torch thread each; its experiment folder."""
    tmp = tmp_path_factory.mktemp("digits")
    from helpers.grids import train_grid
    grid = train_grid(tmp / "grid.yaml", "tune_lr", {"training_loop.n_epochs": 2}, {"optimizer.lr": [0.01, 0.1]},
                      seeds=2)
    env = {**os.environ, "RESULTS_DIR": str(tmp / "results"), "DATA_DIR": str(tmp / "data"), "OMP_NUM_THREADS": "1"}
    subprocess.run(["bash", "-o", "pipefail", "-c", f"gridgen {grid} | runbatch -j 2 >/dev/null"], env=env,
                   check=True, timeout=600)
    return tmp / "results" / "tune_lr"


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
