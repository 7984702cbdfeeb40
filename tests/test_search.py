"""Adaptive searches as pipes (docs/search.md): halving (successive halving) and propose (Optuna's TPE), run
round by round by scripts/rounds, on a stand-in job that trains made-up epochs in no time
(tests/jobs/search.py); a kill in the middle of a round, and the rerun; one slow test on real train."""
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, tool
from helpers.grids import train_grid
from helpers.same_run import assert_same_run
from runkit.analysis import halving
from runkit.sweeps import spec

JOB = Path(__file__).parent / "jobs" / "search.py"
ROUNDS = REPO / "scripts" / "rounds"
COMMAND = f'command: [{sys.executable}, {JOB}, "{{run_dir}}", "{{bindings}}"]'


def grid_file(tmp_path, experiment="sh", sleep=0, lrs=(0.01, 0.1, 1.0), epochs=9):
    path = tmp_path / f"{experiment}.yaml"
    path.write_text(f"""\
experiment: {experiment}
{COMMAND}
fixed:
  training_loop.n_epochs: {epochs}
  job.sleep: {sleep}
grid:
  optimizer.lr: {list(lrs)}
  optimizer.weight_decay: [1e-5, 1e-4, 1e-3]
  mlp.hidden: [[16], [64], [256]]
""")
    return path


def sample_file(tmp_path, experiment="tpe", sleep=0, n=8, seed=0, extra=""):
    path = tmp_path / f"{experiment}.yaml"
    path.write_text(f"""\
experiment: {experiment}
{COMMAND}
fixed:
  training_loop.n_epochs: 3
  job.sleep: {sleep}
sample:
  n: {n}
  seed: {seed}
  params:
    optimizer.lr: {{loguniform: [0.003, 3.0]}}
    optimizer.weight_decay: {{loguniform: [1e-5, 1e-3]}}
    mlp.hidden: {{choice: [[16], [64], [256]]}}
{extra}""")
    return path


def rounds(*args, check=0, **kwargs):
    return tool(ROUNDS, *args, check=check, **kwargs)


def table(folder):
    """{name: (status, epochs in history, best val_acc)} of the runs under folder."""
    proc = tool("collect", "--format", "jsonl", folder, check=0)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    return {r["name"]: (r["status"], r.get("final_epoch"), r.get("best_val_acc")) for r in rows}


def trained(folder):
    """{name: [epochs trained, in order]} from each run's trained.log (the stand-in's record)."""
    out = {}
    for run in Path(folder).iterdir():
        log = run / "trained.log"
        out[run.name] = [int(e) for e in log.read_text().split()] if log.exists() else []
    return out


# ---- the rung schedule ---------------------------------------------------------------------------

@pytest.mark.parametrize("n, low, high, eta, expected", [
    (27, 1, 9, 3, [(1, 27), (3, 9), (9, 3)]),
    (45, 1, 27, 3, [(1, 45), (3, 15), (9, 5), (27, 1)]),
    (8, 1, 8, 2, [(1, 8), (2, 4), (4, 2), (8, 1)]),
    (10, 1, 10, 3, [(1, 10), (3, 3), (10, 1)]),
    (5, 2, 3, 3, [(3, 5)]),            # no room for a second rung: one rung at the most epochs
    (4, 5, 5, 3, [(5, 4)]),
])
def test_rungs(n, low, high, eta, expected):
    assert halving.rungs(n, low, high, eta) == expected


# ---- ranking: mode, ties, failures -----------------------------------------------------------------

def _history(rows):
    """A collect --history table (CSV) of (name, status, epoch, val_loss) rows, monitor val_loss, mode min."""
    text = io.StringIO()
    out = csv.writer(text)
    out.writerow(["run_dir", "name", "status", "monitor", "mode", "epoch", "val_loss"])
    for name, status, epoch, value in rows:
        out.writerow([f"/r/{name}", name, status, "val_loss", "min", epoch, value])
    text.seek(0)
    from runkit.analysis import table as table_module
    return halving.Results(table_module.read(text))


def test_ranking_minimizes_for_mode_min_breaks_ties_by_name_and_puts_failures_last():
    results = _history([("d", "finished", 1, 0.5), ("c", "finished", 1, 0.2), ("b", "finished", 1, 0.2),
                        ("a", "failed", 1, ""), ("e", "finished", 1, "nan"), ("f", "failed", 2, 0.1)])
    specs = [{"name": n, "run_dir": f"/r/{n}"} for n in "abcdef"]
    assert [s["name"] for s in results.ranked(specs, 1)] == ["b", "c", "d", "a", "e", "f"]
    assert results.done("/r/a", 3) and not results.done("/r/b", 3) and results.done("/r/b", 1)


def test_a_rung_is_judged_on_its_own_epochs_only():
    """Rung 1 ranked at epoch 1 stays ranked so after the winner trained on: its later epochs do not count."""
    results = _history([("a", "finished", 1, 0.3), ("a", "finished", 2, 0.01), ("b", "finished", 1, 0.2)])
    specs = [{"name": n, "run_dir": f"/r/{n}"} for n in "ab"]
    assert [s["name"] for s in results.ranked(specs, 1)] == ["b", "a"]
    assert results.score("/r/a", 2) == 0.01 and results.score("/r/b", 2) is None  # b did not reach 2 epochs


def test_with_binding_replaces_or_appends():
    s = {"name": "x", "run_dir": "/r/x", "argv": ["train", "/r/x", "-b", "training_loop.n_epochs=9", "-b", "a.b=1"],
         "gin_bindings": {"training_loop.n_epochs": 9, "a.b": 1}}
    out = spec.with_binding(s, "training_loop.n_epochs", 3)
    assert out["argv"] == ["train", "/r/x", "-b", "training_loop.n_epochs=3", "-b", "a.b=1"]
    assert out["gin_bindings"] == {"training_loop.n_epochs": 3, "a.b": 1} and s["gin_bindings"]["training_loop.n_epochs"] == 9
    assert spec.with_binding({**s, "argv": ["train", "/r/x"]}, "c.d", "e")["argv"] == ["train", "/r/x", "-b", "c.d='e'"]


# ---- halving, end to end on the stand-in ------------------------------------------------------------

def test_halving_sweep_keeps_the_best_third_each_rung_and_never_reruns_a_failure(tmp_path, results_dir):
    grid = grid_file(tmp_path)
    first = tool("halving", grid, input="", check=0)
    specs = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(specs) == 27 and {s["gin_bindings"]["training_loop.n_epochs"] for s in specs} == {1}
    assert specs[0]["argv"][-2:] == ["-b", "training_loop.n_epochs=1"] or "training_loop.n_epochs=1" in specs[0]["argv"]
    assert first.stderr.startswith("halving: rung 1 of 3 (27 x 1, 9 x 3, 3 x 9 epochs): 27 of 27 runs")

    proc = rounds("--history", results_dir / "sh", "halving", grid)
    assert "halving: done (27 x 1, 9 x 3, 3 x 9 epochs): best lr=0.1_weight_decay=0.0001_hidden=64" in proc.stderr
    epochs = trained(results_dir / "sh")
    assert sorted(len(e) for e in epochs.values()) == [0] * 9 + [1] * 9 + [3] * 6 + [9] * 3  # lr=1.0: failed, no epoch
    assert all(e == list(range(1, len(e) + 1)) for e in epochs.values())  # each epoch once: continued, not restarted
    assert {n for n, e in epochs.items() if len(e) == 9} == {f"lr=0.1_weight_decay={wd}_hidden=64"
                                                            for wd in ("1e-05", "0.0001", "0.001")}
    failed = [n for n, (status, _, _) in table(results_dir / "sh").items() if status == "failed"]
    assert len(failed) == 9 and all(n.startswith("lr=1.0") for n in failed)
    for name in failed:  # started once: a failed run is the worst, not run again
        assert (results_dir / "sh" / name / "stderr.log").exists()
        assert json.loads((results_dir / "sh" / name / "spec.json").read_text())["gin_bindings"]["training_loop.n_epochs"] == 1

    again = rounds("--history", results_dir / "sh", "halving", grid)  # a finished sweep runs nothing
    assert again.stdout == "" and "halving: done" in again.stderr and trained(results_dir / "sh") == epochs


def test_halving_takes_candidates_as_specs(tmp_path, results_dir):
    grid = grid_file(tmp_path, lrs=(0.1,))
    specs = tool("gridgen", grid, check=0).stdout.splitlines()
    (tmp_path / "specs.jsonl").write_text("\n".join(s for s in specs if '"hidden":[64]' in s) + "\n")
    proc = tool("halving", tmp_path / "specs.jsonl", "--max-epochs", "4", "--eta", "2", input="", check=0)
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [s["name"] for s in out] == [f"lr=0.1_weight_decay={wd}_hidden=64" for wd in ("1e-05", "0.0001", "0.001")]
    assert proc.stderr.startswith("halving: rung 1 of 3 (3 x 1, 1 x 2, 1 x 4 epochs)")


@pytest.mark.parametrize("args, stdin, message", [
    (["missing.yaml"], "", "halving: cannot read missing.yaml"),
    (["{grid}"], "not,a,table\n1,2,3\n", "halving: stdin is not a collect table"),
    (["{grid}"], "run_dir,name,status,epoch\n/x,x,finished,1,0.5\n", "halving: stdin is not a collect table"),
    (["{grid}"], "run_dir,name,status,best_val_acc\n/x,x,finished,0.5\n", "halving: stdin is a table of runs"),
    (["{grid}", "--eta", "1"], "", "halving: --eta must be 2 or more"),
    (["{grid}", "--min-epochs", "10"], "", "halving: --min-epochs 10 is above the last rung's 9 epochs"),
])
def test_halving_bad_input_is_one_line_and_no_specs(tmp_path, results_dir, args, stdin, message):
    grid = grid_file(tmp_path)
    proc = tool("halving", *[a.replace("{grid}", str(grid)) for a in args], input=stdin, cwd=tmp_path, check=2)
    assert proc.stdout == "" and proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr


# ---- propose, end to end on the stand-in -------------------------------------------------------------

def test_propose_rounds_are_seeded_named_as_gridgen_names_and_stop_at_n(tmp_path, results_dir):
    grid = sample_file(tmp_path, n=8)
    proc = rounds(results_dir / "tpe", "propose", grid, "-n", "3", "--startup", "3")
    assert "propose: done: 8 of 8 points tried; best" in proc.stderr
    first = table(results_dir / "tpe")
    assert len(first) == 8 and all(s in ("finished", "failed") for s, _, _ in first.values())
    names = sorted(first)
    assert all(n.startswith("lr=") and "_weight_decay=" in n and "_hidden=" in n for n in names)
    # the random first round is gridgen's naming of points drawn from the same space
    assert tool("propose", grid, "-n", "3", "--startup", "3", input="", check=0).stdout.count("\n") == 3

    # the same grid elsewhere proposes the same points; another seed other points
    (tmp_path / "again").mkdir()
    again = sample_file(tmp_path / "again", experiment="tpe2", n=8)
    rounds(results_dir / "tpe2", "propose", again, "-n", "3", "--startup", "3")
    assert sorted(table(results_dir / "tpe2")) == names
    other = sample_file(tmp_path, experiment="tpe3", n=8, seed=1)
    rounds(results_dir / "tpe3", "propose", other, "-n", "3", "--startup", "3")
    assert sorted(table(results_dir / "tpe3")) != names

    done = tool("propose", grid, "-n", "3", "--startup", "3", input=tool("collect", results_dir / "tpe").stdout,
                check=0)
    assert done.stdout == "" and done.stderr.startswith("propose: done")


def test_propose_repeats_each_point_for_its_seeds(tmp_path, results_dir):
    grid = sample_file(tmp_path, n=4, extra="seeds: 2\n")
    first = [json.loads(line) for line in tool("propose", grid, "-n", "2", input="", check=0).stdout.splitlines()]
    assert [s["bindings"]["seed"] for s in first] == [0, 0, 1, 1]
    assert first[0]["name"].endswith("_seed=0") and first[2]["name"] == first[0]["name"].replace("seed=0", "seed=1")
    rounds(results_dir / "tpe", "propose", grid, "-n", "2")
    assert len(table(results_dir / "tpe")) == 8


@pytest.mark.parametrize("grid_text, message", [
    ("grid: {optimizer.lr: [0.1]}\n", "propose: the grid file has no sample: space"),
    ("sample: {n: 4, params: {optimizer.lr: {loguniform: [0, 1]}}}\n", "propose: sample: optimizer.lr: loguniform"),
    ("sample: {n: 4, params: {optimizer.lr: {uniform: [0, 1]}}}\ngrid: {a.b: [1]}\n", "propose: grid: propose searches"),
])
def test_propose_bad_grid_is_one_line_and_no_specs(tmp_path, results_dir, grid_text, message):
    (tmp_path / "g.yaml").write_text(f"{COMMAND}\n{grid_text}")
    proc = tool("propose", tmp_path / "g.yaml", input="", check=2)
    assert proc.stdout == "" and proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr


def test_halving_is_a_light_tool_no_torch_pandas_or_optuna(tmp_path, results_dir):
    """halving's whole work (a grid, a table, the next rung) imports none of them; -X importtime lists imports."""
    grid = grid_file(tmp_path)
    proc = subprocess.run([sys.executable, "-X", "importtime", str(REPO / "tools" / "halving"), str(grid)],
                          input="", capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert "yaml" in imported and not imported & {"torch", "pytorch_lightning", "pandas", "optuna", "numpy"}


# ---- resumable by construction: kill a round in the middle, run the same command again -----------------

def _kill_in_round_two(argv, folder, cwd, round_two, jobs_too):
    """Start the rounds, SIGKILL their whole process group once round 2 has trained some epochs, and with
    jobs_too the jobs runbatch started (each in a session of its own) as well, as if the machine went down."""
    proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if folder.exists() and round_two(_epochs_logged(folder)):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the rounds ended before the kill: " + proc.stderr.read()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if jobs_too:
        for pid in _jobs_of(folder):
            os.kill(pid, signal.SIGKILL)


def _jobs_of(folder):
    """The pids of the processes whose command line names a run folder under folder (the stand-in jobs)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.name.isdigit() and any(a.startswith(str(folder).encode() + b"/") for a in argv):
            pids.append(int(entry.name))
    return pids


def _epochs_logged(folder):
    logs = [run / "trained.log" for run in folder.iterdir()]
    return [len(log.read_text().split()) for log in logs if log.exists()]


@pytest.mark.slow
@pytest.mark.parametrize("search, jobs_too", [("halving", True), ("propose", False)])
def test_kill_in_the_middle_of_a_round_then_rerun_ends_as_an_uninterrupted_search(tmp_path, results_dir, search,
                                                                                  jobs_too):
    """halving: everything killed (the rerun resumes the dead runs); propose: the rounds and runbatch killed,
    their jobs left running (the rerun waits for them)."""
    if search == "halving":
        make = lambda d, name: grid_file(d, experiment=name, sleep=0.3, lrs=(0.01, 0.1), epochs=3)  # noqa: E731
        args = lambda g, name: [ROUNDS, "--history", results_dir / name, "halving", g]  # noqa: E731
        round_two = lambda epochs: max(epochs, default=0) >= 2  # 18 runs x 1 epoch, then 6 runs to 3 epochs  # noqa: E731
    else:
        make = lambda d, name: sample_file(d, experiment=name, sleep=0.3, n=6)  # noqa: E731
        args = lambda g, name: [ROUNDS, results_dir / name, "propose", g, "-n", "3", "--startup", "3"]  # noqa: E731
        round_two = lambda epochs: len(epochs) >= 4  # two rounds of 3 points  # noqa: E731
    reference = make(tmp_path, "whole")
    tool(*args(reference, "whole"), check=0)
    (tmp_path / "k").mkdir()
    killed = make(tmp_path / "k", "killed")
    _kill_in_round_two(args(killed, "killed"), results_dir / "killed", tmp_path, round_two, jobs_too)
    assert table(results_dir / "killed") != table(results_dir / "whole")  # the kill left the search unfinished
    rerun = tool(*args(killed, "killed"), check=0, env=dict(os.environ, ROUNDS_WAIT="0.5"))
    assert "done" in rerun.stderr
    assert table(results_dir / "killed") == table(results_dir / "whole")
    # nothing ran twice: every epoch of every run was trained once (an epoch the kill cut short is not recorded)
    assert trained(results_dir / "killed") == trained(results_dir / "whole")


# ---- on real train ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_halving_on_real_train_continues_runs_as_if_trained_that_long(tmp_path, results_dir, one_thread, warm):
    grid = train_grid(tmp_path / "grid.yaml", "real", {"training_loop.n_epochs": 3, "lr_schedule.name": "constant"},
                      {"optimizer.lr": [0.003, 0.03, 0.3]})
    proc = rounds("--history", results_dir / "real", "halving", grid, "--eta", "3")
    assert "halving: done (3 x 1, 1 x 3 epochs)" in proc.stderr
    assert '"warm":true' in proc.stderr  # the rounds' runbatch forks them from its warm process (docs/warm-runs.md)
    rows = table(results_dir / "real")
    winner = [n for n, (_, epochs, _) in rows.items() if epochs == 3]
    assert len(winner) == 1 and sorted(e for _, e, _ in rows.values()) == [1, 1, 3]
    lr = winner[0].split("=")[1]
    warm.train(results_dir / "fresh", REPO / "configs" / "digits_mlp.gin", "-b", "training_loop.n_epochs=3",
               "-b", "lr_schedule.name='constant'", "-b", f"optimizer.lr={lr}", check=0)
    assert_same_run(results_dir / "real" / winner[0], results_dir / "fresh")


def test_rounds_wait_for_runs_another_process_holds(tmp_path, results_dir):
    """A runner that finds the runs held (skipped as running: the jobs of a runbatch killed with -9) is tried
    again after ROUNDS_WAIT seconds, not taken for a round without progress."""
    grid = grid_file(tmp_path, lrs=(0.1,), epochs=1)
    runner = tmp_path / "held-once"
    held = ("import json, sys; [print(json.dumps({'name': json.loads(line)['name'], 'status': 'skipped', "
            "'reason': 'running'})) for line in sys.stdin]")
    runner.write_text(f"#!/bin/sh\nif [ -e held ]; then exec runbatch; fi\ntouch held\nexec {sys.executable} -c \"{held}\"\n")
    runner.chmod(0o755)
    proc = rounds("--history", "--run", runner, results_dir / "sh", "halving", grid, cwd=tmp_path,
                  env=dict(os.environ, ROUNDS_WAIT="0.1"))
    assert "rounds: 9 runs are held by another process; waiting for them (0.1 s)" in proc.stderr
    assert "halving: done" in proc.stderr and len(table(results_dir / "sh")) == 9


@pytest.mark.slow
def test_make_search_tpe_runs_offline_end_to_end_and_reruns_nothing(results_dir):
    proc = subprocess.run(["make", "-s", "-o", ".venv/.done", "search_tpe"], cwd=REPO, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "propose: done: 15 of 15 points tried; best" in proc.stderr
    rows = table(results_dir / "search_tpe")
    assert len(rows) == 15 and all(status == "finished" and epochs == 27 for status, epochs, _ in rows.values())
    assert max(best for _, _, best in rows.values()) > 0.95
    again = subprocess.run(["make", "-s", "-o", ".venv/.done", "search_tpe"], cwd=REPO, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0 and "runbatch" not in again.stderr and "propose: done" in again.stderr


@pytest.mark.parametrize("bracket, min_epochs, plan, runs", [
    (0, 1, "27 x 1, 9 x 3, 3 x 9, 1 x 27", 27), (1, 3, "12 x 3, 4 x 9, 1 x 27", 12), (2, 9, "6 x 9, 2 x 27", 6),
    (3, 27, "4 x 27", 4)])
def test_hyperband_brackets_start_as_docs_search_md_says(results_dir, bracket, min_epochs, plan, runs):
    grid = REPO / "experiments" / "search" / "hyperband" / f"bracket{bracket}.yaml"
    proc = tool("halving", grid, "--min-epochs", min_epochs, input="", check=0)
    assert plan in proc.stderr and f"{runs} of {runs} runs to train to {min_epochs} epochs" in proc.stderr
    specs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(specs) == runs and all(s["run_dir"].startswith(str(results_dir / f"hyperband{bracket}")) for s in specs)
    assert f"halving --min-epochs {min_epochs}`: {plan}." in grid.read_text()
    assert f"--min-epochs {min_epochs}" in (REPO / "docs" / "search.md").read_text()
