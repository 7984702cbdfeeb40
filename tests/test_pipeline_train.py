"""The pipeline with real `train`: gridgen | runbatch | collect | plot on digits, make tune_lr, its CIFAR-10 switch
(on a tiny CIFAR-10 archive written by the test: no network)."""
import json
import os
import subprocess
import time

import pytest

from conftest import REPO, requires
from helpers.grids import train_grid


def sh(script, cwd=REPO, check=0, timeout=600):
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == check, f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@requires("jq")
def test_the_docs_jq_line_on_the_real_grid(results_dir):
    proc = sh("gridgen experiments/tune_lr/grid.yaml | jq -c 'select(.bindings.seed == 1)' | runbatch --dry-run")
    specs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [s["name"] for s in specs] == [f"lr={lr}_seed=1" for lr in
                                          ("0.001", "0.003", "0.01", "0.03", "0.1", "0.3", "1.0")]
    assert specs[0]["argv"][:3] == ["train", str(results_dir / "tune_lr" / "lr=0.001_seed=1"),
                                    str(REPO / "configs" / "digits_mlp.gin")]
    assert list(results_dir.iterdir()) == []


def test_train_through_the_whole_pipeline(tmp_path, results_dir):
    grid = train_grid(tmp_path / "grid.yaml", "tiny", {"training_loop.n_epochs": 1}, {"optimizer.lr": [0.01, 0.3]})
    outcomes = sh(f"gridgen {grid} | runbatch -j 2", cwd=tmp_path).stdout.splitlines()
    assert [json.loads(o)["status"] for o in outcomes] == ["finished", "finished"]
    proc = sh("collect $RESULTS_DIR/tiny | plot lr -o lr.png", cwd=tmp_path)
    assert proc.stdout.splitlines()[0].split()[:2] == ["best", "lr"] and (tmp_path / "lr.png").exists()
    table = sh("collect --format jsonl $RESULTS_DIR/tiny", cwd=tmp_path).stdout
    rows = [json.loads(line) for line in table.splitlines()]
    assert [(r["lr"], r["status"]) for r in rows] == [(0.01, "finished"), (0.3, "finished")]
    assert all(0 < r["best_val_acc"] <= 1 and r["final_epoch"] == 1 for r in rows)


@pytest.mark.slow
def test_two_runbatch_on_real_train_specs(tmp_path, results_dir):
    grid = train_grid(tmp_path / "grid.yaml", "twice", {"training_loop.n_epochs": 2},
                      {"optimizer.lr": [0.03, 0.1, 0.3]})
    sh(f"gridgen {grid} > specs.jsonl", cwd=tmp_path)
    procs = [subprocess.Popen(["runbatch", "specs.jsonl"], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [[json.loads(line) for line in p.communicate(timeout=600)[0].splitlines()] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    by_run = {}
    for out in outs:
        for o in out:
            by_run.setdefault(o["name"], []).append(o["status"])
    assert all(sorted(s) == ["finished", "skipped"] for s in by_run.values()), by_run
    for name in by_run:
        assert (results_dir / "twice" / name / "stdout.log").read_text().count('"final"') == 1  # trained once


@pytest.mark.slow
def test_make_tune_lr_shows_an_optimum_and_reruns_nothing(results_dir):
    start = time.monotonic()
    # -o: never rebuild .venv from a test (a worktree's .venv may be shared)
    proc = sh("make -s -o .venv/.done tune_lr")
    took = time.monotonic() - start
    png = results_dir / "tune_lr" / "tune_lr.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert (results_dir / "tune_lr" / "report.html").read_text().startswith("<!DOCTYPE html>")
    best = proc.stdout.splitlines()
    summary = best[best.index(next(line for line in best if line.startswith("best lr"))) + 1].split()
    assert summary[0] not in ("0.001", "1.0", "1"), proc.stdout  # the optimum is inside the range
    rows = sh("collect --format jsonl $RESULTS_DIR/tune_lr").stdout.splitlines()
    assert len(rows) == 14 and all(json.loads(r)["status"] == "finished" for r in rows)

    again = sh("make -s -o .venv/.done tune_lr")  # a rerun only redraws the plot
    outcomes = [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")]
    assert len(outcomes) == 14 and {o["reason"] for o in outcomes} == {"finished"}
    print(f"make tune_lr: {took:.0f} s")


@pytest.mark.slow
def test_interrupted_runbatch_resumes_the_run(tmp_path, results_dir):
    grid = train_grid(tmp_path / "grid.yaml", "resume", {"training_loop.n_epochs": 30})
    sh(f"gridgen {grid} > specs.jsonl", cwd=tmp_path)
    run_dir = results_dir / "resume" / "run"
    first = subprocess.Popen(["runbatch", "specs.jsonl"], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(_lines(run_dir / "history.csv")) < 3:
        time.sleep(0.2)
    first.terminate()  # runbatch passes SIGTERM on; train checkpoints and stops
    out, err = first.communicate(timeout=120)
    outcome = json.loads(out)
    assert first.returncode == 1 and outcome["status"] == "stopped", outcome
    assert err.startswith("runbatch: interrupted")
    before = _lines(run_dir / "history.csv")[1:]
    assert 0 < len(before) < 30
    again = json.loads(sh("runbatch specs.jsonl", cwd=tmp_path).stdout)
    assert again["status"] == "finished"
    after = _lines(run_dir / "history.csv")[1:]
    assert [int(line.split(",")[0]) for line in after] == list(range(1, 31))
    assert after[:len(before)] == before  # resumed, not restarted: the first attempt's epochs (and times) stay


def _lines(path):
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def test_cifar10_is_one_variable(results_dir):
    plan = sh("make -n -o .venv/.done tune_lr DATASET=cifar10").stdout
    assert "gridgen experiments/tune_lr/cifar10.yaml" in plan and f"{results_dir}/tune_lr_cifar10 " in plan
    specs = [json.loads(line) for line in sh("gridgen experiments/tune_lr/cifar10.yaml").stdout.splitlines()]
    assert len(specs) == 12 and {s["gin_bindings"]["training_loop.data"] for s in specs} == {"cifar10"}
    assert "-b" in specs[0]["argv"] and "training_loop.data='cifar10'" in specs[0]["argv"]
    assert "no experiments/tune_lr/svhn.yaml" in sh("make -s -o .venv/.done tune_lr DATASET=svhn", check=2).stderr


@requires("jq")
def test_the_cifar10_sweep_trains_on_cifar10(tmp_path, results_dir):
    from cifar_archive import write_cifar_archive
    write_cifar_archive(os.environ["DATA_DIR"], per_batch=20)
    shorter = '.argv += ["-b", "training_loop.n_epochs=1", "-b", "cifar10.download=False", "-b", "cifar10.n_val=20"]'
    out = sh("gridgen experiments/tune_lr/cifar10.yaml"
             f" | jq -c 'select(.bindings.lr == 0.001 and .bindings.seed == 0) | {shorter}' | runbatch").stdout
    assert json.loads(out)["status"] == "finished"
    row = json.loads(sh("collect --format jsonl --full-names $RESULTS_DIR/tune_lr_cifar10").stdout)
    assert row["name"] == "lr=0.001_seed=0" and row["final_epoch"] == 1
    assert "cifar10" in (results_dir / "tune_lr_cifar10" / "lr=0.001_seed=0" / "bindings.json").read_text()
