"""report: the page opened in headless Chromium, offline (rows, plots drawn, no console errors, no request
off the file); pipes, --watch, bad input; the page of a real digits sweep (conftest.digits_sweep)."""
import json
import shlex
import signal
import subprocess
import sys

import pytest

from browser import Browser
from conftest import REPO, requires, tool
from helpers.waiting import wait_for
from runkit.rundir import runs
from test_collect import make_run

LRS, SEEDS = (0.001, 0.01, 0.1), (0, 1)


@pytest.fixture
def sweep(results_dir):
    """6 finished runs (3 rates x 2 seeds) and one failed run."""
    root = results_dir / "tune_lr"
    for lr in LRS:
        for seed in SEEDS:
            make_run(root, f"lr={lr}_seed={seed}", {"optimizer.lr": lr, "training_loop.seed": seed, "mlp.hidden": 64},
                     (0.5, 0.6 + lr, 0.7 + lr + seed / 100))
    failed = make_run(root, "lr=1.0_seed=0", {"optimizer.lr": 1.0, "training_loop.seed": 0, "mlp.hidden": 64},
                      (0.1,), finished=False)
    runs.mark_failed(failed, "loss is NaN", "FloatingPointError")
    return root


def drawn(path):
    """What Chromium shows of the page: counts of the parts, the failed run's status cell, errors, requests."""
    with Browser() as browser:
        page = browser.open(path)
        page.ready()
        page.draw_all()
        facts = page.eval("""({
            rows: document.querySelectorAll('#runs tbody tr').length,
            curves: document.querySelectorAll('#curves .scatterlayer .trace').length,
            parcoords: document.querySelectorAll('#parcoords .parcoords .axis').length,
            panels: document.querySelectorAll('#panels .js-plotly-plot').length,
            statuses: [...document.querySelectorAll('#runs tbody tr td:nth-child(2)')].map(td => td.textContent),
            diff: [...document.querySelectorAll('#diff tr')].map(tr => tr.textContent),
            metrics: [...document.querySelectorAll('#curve-metric option')].map(o => o.value),
        })""")
        return facts, page.errors(), page.requests()


@requires("chromium")
def test_the_page_in_chromium_offline(sweep, tmp_path):
    out = tmp_path / "sweep.html"
    proc = tool("report", sweep, "-o", out, check=0)
    assert proc.stderr == f"report: wrote {out}: 7 runs\n"
    facts, errors, requests = drawn(out)
    assert errors == []
    assert requests[0] == out.as_uri() and all(u.startswith(("file:", "blob:", "data:")) for u in requests)
    assert facts["rows"] == 7
    assert facts["curves"] == 3 * 2 + 1  # a line and its band (one filled trace) per rate; the failed run a line
    assert facts["parcoords"] == 2  # log10(lr) and best_val_acc: the seeds are averaged, hidden never varies
    assert facts["panels"] == 1
    assert "failed: FloatingPointError: loss is NaN" in facts["statuses"]
    assert set(facts["metrics"]) >= {"val_acc", "train_loss", "val_loss"}
    assert facts["diff"][1:] == ["training_loop.seed01"]  # the two best runs differ by their seed


def test_a_piped_table_and_a_self_contained_file(sweep, tmp_path):
    out = tmp_path / "page.html"
    table = tool("collect", sweep, check=0).stdout
    tool("report", "-o", out, "--title", "my sweep", input=table, check=0)
    text = out.read_text()
    assert "<title>my sweep</title>" in text and "http-equiv" not in text
    data = json.loads(text.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    assert data["columns"][:5] == ["name", "status", "lr", "seed", "best_val_acc"]
    assert len(data["rows"]) == 7 and data["common"] == {"mlp.hidden": 64}


@pytest.mark.parametrize("setup, args, message", [
    ("empty", [], "stdin is empty"),
    ("header", [], "the table has no rows"),
    ("running", ["DIR"], "the table has no metrics"),
    ("nothing", ["DIR"], "no run folders in"),
    ("nothing", ["--watch"], "--watch reads run folders"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, setup, args, message):
    folder = tmp_path / "runs"
    folder.mkdir()
    if setup == "running":
        make_run(folder, "a", {"optimizer.lr": 0.1}, finished=False)
    stdin = {"empty": "", "header": "run_dir,name,status,best_val_acc\n"}.get(setup, "")
    out = tmp_path / "out.html"
    proc = tool("report", "-o", out, *[str(folder) if a == "DIR" else a for a in args], input=stdin, check=2)
    assert message in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_watch_rewrites_the_page_and_the_page_reloads(sweep, tmp_path):
    """SIGINT stops it even where it inherited SIGINT ignored, as a background job of a script does
    (`make test &`): started so here, whatever way pytest itself was started."""
    out = tmp_path / "live.html"
    report = shlex.join(map(str, [sys.executable, REPO / "tools" / "report", "--watch", "--every", "0.2", "-o", out, sweep]))
    watch = subprocess.Popen(["bash", "-c", f"trap '' INT; exec {report}"], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(out.exists, "the first page")
        assert '<meta http-equiv="refresh" content="0.2">' in out.read_text()
        make_run(sweep, "lr=0.5_seed=0", {"optimizer.lr": 0.5, "training_loop.seed": 0, "mlp.hidden": 64})
        wait_for(lambda: "lr=0.5_seed=0" in out.read_text(), "the page with the new run")
    finally:
        watch.send_signal(signal.SIGINT)
        try:
            assert watch.wait(timeout=60) == 0
        except subprocess.TimeoutExpired:
            watch.kill()
            raise
    assert "stopped watching" in watch.stderr.read()


# ---- a real sweep: 4 digits runs of 2 epochs ------------------------------------------------------

@pytest.mark.slow
@requires("chromium")
def test_a_real_sweeps_page(digits_sweep, tmp_path):
    out = tmp_path / "tune_lr.html"
    tool("bash", "-o", "pipefail", "-c", f"collect {digits_sweep} | report -o {out}", check=0)
    facts, errors, _ = drawn(out)
    assert errors == [] and facts["rows"] == 4 and facts["parcoords"] == 2 and facts["panels"] == 1
    assert facts["curves"] == 2 * 2 and facts["statuses"] == ["finished"] * 4
