"""collect on run folders built by hand as docs/run-folder.md says: columns, statuses, formats, bad input."""
import csv
import io
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from conftest import tool
from runkit.rundir import lock, runs


def make_run(root, name, config, val_accs=(0.5, 0.7), finished=True):
    """A classification run: history val_acc per epoch, monitor val_acc (max)."""
    history = [{"epoch": e, "step": 10 * (e + 1), "train_loss": 1.0 / (e + 1), "train_acc": acc, "val_loss": 1 - acc,
                "val_acc": acc, "lr": config.get("optimizer.lr"), "time": 0.5} for e, acc in enumerate(val_accs)]
    return write_run(root / name, config, history, "val_acc", "max" if finished else None)


def write_run(run_dir, config, history, monitor, mode=None, test=None):
    """A run folder by hand, as the run-folder contract says: history.csv with epoch, step, the metrics logged
    (any names; a metric first logged later is empty before), lr, time; with a mode, metrics.json and FINISHED."""
    run_dir.mkdir(parents=True)
    runs.write_json(run_dir, runs.BINDINGS, config)
    metrics = [k for row in history for k in row if k not in ("epoch", "step", "lr", "time")]
    columns = ["epoch", "step", *dict.fromkeys(metrics), "lr", "time"]
    with open(run_dir / runs.HISTORY, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
    if mode:
        pick = max if mode == "max" else min
        best = pick((r for r in history if r.get(monitor) is not None), key=lambda r: r[monitor])
        summary = {"monitor": monitor, "mode": mode, "final": history[-1], "best": best}
        (run_dir / runs.METRICS).write_text(json.dumps({**summary, **({"test": test} if test else {})}))
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
    assert header[5:9] == ["monitor", "mode", "best_val_acc", "best_epoch"] and header[-1] == "error"
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
    held = lock.try_lock(running)  # a live process on this machine holds it
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
    bad = {r["name"]: r["error"] for r in read_csv(proc.stdout) if r["status"] == "corrupt"}
    assert "history.csv line 4" in bad.pop("lr=0.01_seed=1") and "metrics.json" in bad.pop("lr=0.1_seed=0")
    assert not bad  # a history table reads metrics.json too, for the monitor
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


def regression(lr, seed, epochs=3):
    """History rows of a regression run that logs val_mse, and val_r2 from its second epoch on."""
    rows = []
    for e in range(epochs):
        mse = (lr - 0.1) ** 2 + abs(e - 1) / 2 + 0.5 + seed / 100  # best at epoch 1
        rows.append({"epoch": e, "step": 5 * (e + 1), "train_loss": mse, "val_mse": mse, "lr": lr, "time": e + 1.0,
                     **({"val_r2": 1 - mse} if e else {})})
    return rows


def test_columns_are_the_metrics_the_runs_have(results_dir):
    root = results_dir / "mixed"
    write_run(root / "reg", {"model.width": 8}, regression(0.1, 0), "val_mse", "min", test={"test_mse": 0.6})
    make_run(root, "cls", {"model.width": 16})
    proc = tool("collect", root, check=0)
    header = proc.stdout.splitlines()[0].split(",")
    assert header[:9] == ["run_dir", "name", "status", "width", "monitor", "mode", "best_val_acc", "best_val_mse",
                          "best_epoch"]
    rest = header[9:-1]
    assert rest == sorted(c for c in rest if c.startswith("best_")) + sorted(
        c for c in rest if c.startswith("final_")) + ["test_mse"] and header[-1] == "error"
    assert {"best_val_r2", "final_val_r2", "final_train_acc", "best_time"} <= set(rest)
    cls, reg = read_csv(proc.stdout)
    assert (reg["monitor"], reg["mode"], reg["best_val_mse"], reg["best_epoch"]) == ("val_mse", "min", "0.5", "1")
    assert reg["final_val_r2"] == "0.0" and reg["test_mse"] == "0.6" and reg["best_val_acc"] == ""
    assert (cls["monitor"], cls["mode"], cls["best_val_acc"], cls["best_val_mse"]) == ("val_acc", "max", "0.7", "")

    alone = tool("collect", root / "reg", check=0).stdout.splitlines()[0]
    assert "acc" not in alone and ",best_val_mse,best_epoch," in alone

    rows = read_csv(tool("collect", "--history", root, check=0).stdout)
    assert list(rows[0])[3:] == ["width", "monitor", "mode", "epoch", "step", "train_acc", "train_loss", "val_acc",
                                 "val_loss", "val_mse", "val_r2", "lr", "time", "error"]
    assert [r["val_r2"] for r in rows if r["name"] == "reg"] == ["", "0.5", "0.0"]


def test_a_failed_run_says_why(results_dir):
    root = results_dir / "f"
    make_run(root, "ok", {"a.b": 1})
    make_run(root, "bad", {"a.b": 2}, finished=False)
    runs.write_json(root / "bad", runs.ERROR, {"error": "lr must be positive\n(in optimizer)", "type": "ValueError"})
    make_run(root, "killed", {"a.b": 3}, finished=False)
    runs.mark_failed(root / "killed", "killed by SIGKILL", "Signal")
    proc = tool("collect", root, check=0)
    assert {r["name"]: (r["status"], r["error"]) for r in read_csv(proc.stdout)} == {
        "bad": ("failed", "ValueError: lr must be positive"), "killed": ("failed", "Signal: killed by SIGKILL"),
        "ok": ("finished", "")}
    assert proc.stderr == ""
    history = read_csv(tool("collect", "--history", root, check=0).stdout)
    assert {r["error"] for r in history if r["name"] == "bad"} == {"ValueError: lr must be positive"}


def strict_reader():
    """A process that reads JSON lines as strict parsers do: jq, or Python refusing NaN and Infinity."""
    if shutil.which("jq"):
        return "jq -c ."
    check = ("import json, sys\ndef no(c): raise ValueError(c)\n"
             "for line in sys.stdin: print(json.dumps(json.loads(line, parse_constant=no)))")
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(check)}"


def pipe(script):
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, f"{script}\n{proc.stderr}"
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_json_lines_write_nan_and_infinity_as_null(results_dir):
    history = [{"epoch": 0, "step": 1, "val_loss": float("nan"), "val_acc": 0.5, "lr": 0.1, "time": 1.0},
               {"epoch": 1, "step": 2, "val_loss": float("inf"), "val_acc": 0.6, "lr": 0.1, "time": 2.0}]
    run_dir = write_run(results_dir / "n" / "a", {"a.b": 1}, history, "val_acc", "max", test={"test_loss": -math.inf})
    assert "Infinity" in (run_dir / runs.METRICS).read_text() and ",nan," in (run_dir / runs.HISTORY).read_text()
    row, = pipe(f"collect --format jsonl {shlex.quote(str(run_dir))} | {strict_reader()}")
    assert row["best_val_acc"] == 0.6 and row["best_val_loss"] is None and row["test_loss"] is None
    rows = pipe(f"collect --history --format jsonl {shlex.quote(str(run_dir))} | {strict_reader()}")
    assert [r["val_loss"] for r in rows] == [None, None]


def test_write_jsonl_gives_strict_json_for_numpy_and_nested_values():
    write = ("import numpy as np\nfrom runkit import cli\n"
             "cli.write_jsonl({'loss': np.float32(0.5), 'nan': float('nan'), 'steps': np.int64(3), 'ok': np.bool_(1),"
             " 'nested': {'inf': [np.float64('inf'), -float('inf')], 'array': np.array([1.0, np.nan])}})")
    row, = pipe(f"{shlex.quote(sys.executable)} -c {shlex.quote(write)} | {strict_reader()}")
    assert row == {"loss": 0.5, "nan": None, "steps": 3, "ok": True, "nested": {"inf": [None, None],
                                                                                 "array": [1.0, None]}}
