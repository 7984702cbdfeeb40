"""The example project (examples/my_project) works as docs/own-project.md shows it: its files are the ones
printed there, and its `train` command, run as a real process, makes a finished run folder with the
example's own metrics; running it again trains nothing."""
import json
import os
import re
import subprocess

import pytest

from conftest import DOCS, REPO
from runkit.rundir import runs

EXAMPLE = REPO / "examples" / "my_project"
COMMAND = re.compile(r"^ {4}(PYTHONPATH=\S+ train \S+ examples/my_project/my_project\.gin)$", re.MULTILINE)


def docs_text():
    return "\n".join(path.read_text() for path in DOCS)


def docs_command():
    commands = COMMAND.findall(docs_text())
    assert len(commands) == 1, commands
    return commands[0]


def run(command, results_dir):
    # The docs' PYTHONPATH=examples replaces the variable, dropping the lib/ of this checkout that
    # conftest put there; keep it after examples/, so that the test trains with this checkout's runkit.
    command = command.replace("PYTHONPATH=examples ", f"PYTHONPATH=examples:{REPO / 'lib'} ", 1)
    return subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "RESULTS_DIR": str(results_dir)})


def test_the_docs_show_the_example_files_as_they_are():
    docs = docs_text()
    for name in ("lit.py", "my_project.gin"):
        text = (EXAMPLE / name).read_text().rstrip("\n")
        assert f"# examples/my_project/{name}\n{text}\n```" in docs, name


@pytest.mark.slow
def test_the_docs_command_trains_the_example_and_a_rerun_trains_nothing(tmp_path):
    command = docs_command()
    done = run(command, tmp_path)
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    run_dir = tmp_path / "my_run"

    assert runs.status(run_dir) == "finished" and (run_dir / runs.FINISHED).exists()
    history = runs.read_history(run_dir)
    with open(run_dir / runs.HISTORY) as f:
        assert f.readline().strip() == "epoch,step,train_mse,val_mae,val_mse,lr,time"
    assert [row["epoch"] for row in history] == list(range(1, 11))
    assert history[-1]["val_mse"] < history[0]["val_mse"]  # it learned
    assert (metrics["monitor"], metrics["mode"]) == ("val_mae", "min")  # the task's class attributes
    assert metrics["best"]["val_mae"] == min(row["val_mae"] for row in history)
    assert set(metrics["test"]) == {"test_mse", "test_mae"}  # training_loop.test: best.ckpt on the test split
    assert metrics == runs.read_json(run_dir, runs.METRICS)
    assert (run_dir / runs.CHECKPOINTS / "best.ckpt").exists()

    files = {p.relative_to(run_dir): p.stat().st_mtime_ns for p in run_dir.rglob("*")
             if p.is_file() and p.name != runs.HEARTBEAT}
    again = run(command, tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == metrics
    assert "epoch" not in again.stderr  # no epoch trained
    assert {p.relative_to(run_dir): p.stat().st_mtime_ns for p in run_dir.rglob("*")
            if p.is_file() and p.name != runs.HEARTBEAT} == files
    assert runs.read_json(run_dir, runs.META)["attempts"] == 1


def test_without_the_package_on_the_path_the_config_is_refused(tmp_path):
    command = docs_command().replace("PYTHONPATH=examples ", "", 1)
    done = run(command, tmp_path)
    assert done.returncode == 2
    assert "cannot import module 'my_project.lit' (No module named 'my_project')" in done.stderr
    assert not (tmp_path / "my_run").exists()
