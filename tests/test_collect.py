"""collect on run folders written through runkit.runs: columns, statuses, formats, bad input."""
import csv
import io
import json
import os
import sys
import time

import pytest

from conftest import tool
from runkit import runs


def make_run(root, name, config, val_accs=(0.5, 0.7), finished=True):
    run_dir = root / name
    run_dir.mkdir(parents=True)
    runs.write_json(run_dir, runs.BINDINGS, config)
    history = [{"epoch": e, "step": 10 * (e + 1), "train_loss": 1.0 / (e + 1), "train_acc": acc, "val_loss": 1 - acc,
                "val_acc": acc, "lr": config.get("optimizer.lr"), "time": 0.5} for e, acc in enumerate(val_accs)]
    runs.write_history(run_dir, history)
    if finished:
        best = max(history, key=lambda r: r["val_acc"])
        runs.write_json(run_dir, runs.METRICS, {"final": history[-1], "best": {k: best[k] for k in
                                                                                ("val_acc", "val_loss", "epoch")}})
        runs.mark_finished(run_dir)
    return run_dir


@pytest.fixture
def grid(results_dir):
    root = results_dir / "tune_lr"
    for lr in (0.01, 0.1):
        for seed in (0, 1):
            make_run(root, f"lr={lr}_seed={seed}", {"optimizer.lr": lr, "training_loop.seed": seed,
                                                    "training_loop.n_epochs": 2}, (0.5, lr * 5 + seed / 100))
    return root


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_one_row_per_run_with_varying_params_and_metrics(grid):
    proc = tool("collect", grid, check=0)
    header = proc.stdout.splitlines()[0].split(",")
    assert header[:5] == ["run_dir", "name", "status", "lr", "seed"]
    assert header[5:8] == ["best_val_acc", "best_val_loss", "best_epoch"] and header[-1] == "error"
    assert "n_epochs" not in header  # the same in every run: not a column
    rows = read_csv(proc.stdout)
    assert [r["name"] for r in rows] == ["lr=0.01_seed=0", "lr=0.01_seed=1", "lr=0.1_seed=0", "lr=0.1_seed=1"]
    assert rows[3]["run_dir"] == str(grid / "lr=0.1_seed=1") and rows[3]["status"] == "finished"
    assert float(rows[3]["best_val_acc"]) == pytest.approx(0.51) and rows[3]["final_epoch"] == "1"
    assert tool("collect", "--full-names", grid, check=0).stdout.splitlines()[0].startswith(
        "run_dir,name,status,optimizer.lr,training_loop.seed,")


def test_jsonl_keeps_types_and_md_is_a_table(grid):
    rows = [json.loads(line) for line in tool("collect", "--format", "jsonl", grid, check=0).stdout.splitlines()]
    assert rows[0]["lr"] == 0.01 and rows[0]["seed"] == 0 and rows[0]["error"] is None
    md = tool("collect", "--format", "md", grid, check=0).stdout.splitlines()
    assert md[0].startswith("| run_dir | name | status | lr | seed |") and md[1].startswith("| --- |")
    assert len(md) == 2 + 4


def test_history_is_one_row_per_epoch(grid):
    rows = read_csv(tool("collect", "--history", grid, check=0).stdout)
    assert len(rows) == 4 * 2
    assert list(rows[0])[:5] == ["run_dir", "name", "status", "optimizer.lr", "seed"]  # lr is a history column
    assert [r["epoch"] for r in rows[:2]] == ["0", "1"] and rows[1]["val_acc"] == "0.05"


def test_statuses(results_dir):
    root = results_dir / "s"
    make_run(root, "finished", {"a.b": 1})
    make_run(root, "failed", {"a.b": 2}, finished=False)
    runs.write_json(root / "failed", runs.ERROR, {"error": "boom"})
    running = make_run(root, "running", {"a.b": 3}, finished=False)
    held = runs.try_lock(running)  # a live process on this machine holds it
    runs.touch(running, runs.HEARTBEAT)
    elsewhere = make_run(root, "running_elsewhere", {"a.b": 6}, finished=False)
    (elsewhere / runs.LOCK).write_text("another-host 1\n")  # there, only the heartbeat can tell
    runs.touch(elsewhere, runs.HEARTBEAT)
    stopped = make_run(root, "stopped", {"a.b": 7}, finished=False)
    (stopped / runs.STOPPED).write_text("SIGUSR1\n")
    dead = make_run(root, "dead", {"a.b": 4}, finished=False)
    runs.touch(dead, runs.HEARTBEAT)
    old = time.time() - runs.HEARTBEAT_STALE - 5
    os.utime(runs.path(dead, runs.HEARTBEAT), (old, old))
    make_run(root, "incomplete", {"a.b": 5}, finished=False)
    rows = read_csv(tool("collect", root, check=0).stdout)
    os.close(held)
    assert {r["name"]: r["status"] for r in rows} == {"running_elsewhere": "running", **{n: n for n in (
        "finished", "failed", "running", "dead", "incomplete", "stopped")}}


def test_corrupt_files_make_error_rows_not_a_crash(grid):
    (grid / "lr=0.1_seed=0" / runs.METRICS).write_text('{"final": {"val_acc": 0.')
    proc = tool("collect", grid, check=2)
    rows = read_csv(proc.stdout)
    assert len(rows) == 4
    bad = [r for r in rows if r["status"] == "corrupt"]
    assert len(bad) == 1 and "metrics.json" in bad[0]["error"] and bad[0]["lr"] == "0.1"
    assert [line for line in proc.stderr.splitlines()] == [proc.stderr.strip()] and "metrics.json" in proc.stderr

    with open(grid / "lr=0.01_seed=1" / runs.HISTORY, "a") as f:
        f.write("2,30,0.1\n")  # a row cut short
    proc = tool("collect", "--history", grid, check=2)
    bad = [r for r in read_csv(proc.stdout) if r["status"] == "corrupt"]
    assert len(bad) == 1 and "history.csv line 4" in bad[0]["error"]
    assert "Traceback" not in proc.stderr


def test_reads_runbatch_output_or_folders_on_stdin(grid):
    outcome = json.dumps({"name": "x", "run_dir": str(grid / "lr=0.1_seed=1"), "status": "finished"})
    rows = read_csv(tool("collect", input=f"{outcome}\n{grid / 'lr=0.01_seed=0'}\n", check=0).stdout)
    assert [r["name"] for r in rows] == ["lr=0.1_seed=1", "lr=0.01_seed=0"]


@pytest.mark.parametrize("stdin,args,message", [
    (None, ["nope"], "no such folder"),
    ("not a folder\n", [], "neither a folder nor a JSON line"),
    ('{"run_dir": \n', [], "not JSON"),
    ('{"name": "x"}\n', [], "has no run_dir"),
    ("", [], "stdin is empty"),
])
def test_bad_input_exits_2(results_dir, stdin, args, message):
    proc = tool("collect", *[results_dir / a for a in args], input=stdin or "", check=2)
    assert message in proc.stderr and len(proc.stderr.splitlines()) == 1 and proc.stdout == ""


def test_no_runs_is_an_error(results_dir):
    assert "no run folders" in tool("collect", results_dir, check=2).stderr


def test_does_not_import_torch_or_pandas(grid):
    proc = tool(sys.executable, "-X", "importtime", os.path.join(os.path.dirname(__file__), "..", "tools", "collect"),
                grid, check=0)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert imported and not imported & {"torch", "pytorch_lightning", "lightning", "pandas", "numpy"}
