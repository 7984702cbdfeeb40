"""make test's pytest-xdist workers (tests/helpers/workers.py): a real `pytest -n 2` over test files of its
own runs all the SLURM files' tests on one worker and each other file's on one, and uses both workers; the
suite's own files fall into those groups."""
import os
import subprocess
import sys
from collections import defaultdict

from conftest import REPO
from helpers.workers import group

PROBE = '''import os
import time

import pytest
{mark}

@pytest.mark.parametrize("i", range({n}))
def test_probe(i, request):
    time.sleep(0.1)
    with open(os.environ["PROBE_LOG"], "a") as f:
        f.write(f"{{request.node.nodeid}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n")
'''
CONFTEST = '''import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "slurm: a SLURM test")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from helpers.workers import ByGroup
    return ByGroup(config, log)
'''


def test_pytest_n_2_keeps_the_slurm_files_on_one_worker_and_a_file_on_one(tmp_path):
    """The SLURM group has the fewest tests here (xdist would hand it out last) and is handed out first."""
    files = {"test_slurm_a.py": True, "test_runbatch_slurm.py": True, "test_b.py": False, "test_c.py": False}
    for name, slurm in files.items():
        mark, n = ("pytestmark = pytest.mark.slurm", 1) if slurm else ("", 4)
        (tmp_path / name).write_text(PROBE.format(mark=mark, n=n))
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    log = tmp_path / "probe.log"
    env = {**os.environ, "PROBE_LOG": str(log), "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ["PYTHONPATH"]])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    workers, first = defaultdict(set), {}
    for line in log.read_text().splitlines():
        nodeid, worker = line.split()
        workers["slurm" if files[nodeid.split("::")[0]] else nodeid.split("::")[0]].add(worker)
        first.setdefault(worker, nodeid.split("::")[0])
    assert sum(1 for _ in log.read_text().splitlines()) == 10
    [slurm_worker] = workers["slurm"]
    assert files[first[slurm_worker]], first  # its worker began with it
    assert all(len(used) == 1 for used in workers.values()), dict(workers)
    assert len(set().union(*workers.values())) == 2, dict(workers)  # and both workers worked


def test_the_suites_slurm_files_are_one_group_and_the_two_node_cluster_another(monkeypatch):
    monkeypatch.delenv("RUNKIT_SLURM_NODES", raising=False)
    root = str(REPO)
    assert {group(f"tests/{name}::t", root) for name in ("test_slurm_train.py", "test_runbatch_slurm.py",
                                                         "test_snapshot.py", "test_slurm_controller.py")} == {"slurm"}
    assert group("tests/test_slurm_two_nodes.py::t", root) == "slurm-two-nodes"
    assert group("tests/test_train.py::t[a]", root) == group("tests/test_train.py::u", root) == "tests/test_train.py"
    monkeypatch.setenv("RUNKIT_SLURM_NODES", "2")
    assert group("tests/test_slurm_two_nodes.py::t", root) == "slurm"
