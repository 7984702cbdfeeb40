"""plot: PNG, best-X summary, log scale, learning curves, the terminal renderer, bad tables."""
import csv
import io
import json
import shlex
import subprocess

import pytest

from conftest import tool
from runkit.analysis import textplot
from test_collect import make_run, regression, write_run

TABLE = "name,status,lr,seed,monitor,mode,best_val_acc\n" + "".join(
    f"lr={lr}_seed={s},finished,{lr},{s},val_acc,max,{acc + s / 100}\n"
    for lr, acc in ((0.001, 0.6), (0.01, 0.8), (0.1, 0.9), (1.0, 0.3)) for s in (0, 1, 2))


def test_png_summary_and_default_name(tmp_path):
    proc = tool("plot", "lr", input=TABLE, check=0, cwd=tmp_path)
    png = tmp_path / "plots" / "best_val_acc_vs_lr.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote plots/best_val_acc_vs_lr.png" in proc.stderr
    header, best = proc.stdout.splitlines()
    assert header.split()[:2] == ["best", "lr"]
    assert best.split() == ["0.1", "0.91", "0.01", "3"]


def test_hue_jsonl_input_and_loss_goal(tmp_path):
    rows = [{"opt": opt, "lr": lr, "seed": 0, "final_val_loss": abs(lr - best)}
            for opt, best in (("sgd", 0.1), ("adam", 0.001)) for lr in (0.001, 0.01, 0.1)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    proc = tool("plot", "lr", "--hue", "opt", "--y", "final_val_loss", "-o", tmp_path / "x.png", input=text, check=0)
    assert (tmp_path / "x.png").exists()
    assert {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()[1:]} == {"adam": "0.001",
                                                                                             "sgd": "0.1"}


def test_a_table_as_csv_and_as_json_lines_plots_the_same(tmp_path):
    """One reader of a collect table: its two formats give the same points (2.0 stays 2.0, [64, 64] one value)."""
    rows = [{"run_dir": f"/runs/{n}", "name": str(n), "status": "finished", "mlp.hidden": hidden, "scale": scale,
             "seed": seed, "monitor": "val_acc", "mode": "max", "best_val_acc": 0.5 + scale / 10 + seed / 100}
            for n, (hidden, scale, seed) in enumerate((h, x, s) for h in ([64], [64, 64]) for x in (1.0, 2.0)
                                                       for s in (0, 1))]
    as_csv = io.StringIO()
    writer = csv.DictWriter(as_csv, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows)
    as_jsonl = "".join(json.dumps(r) + "\n" for r in rows)
    points = [tool("plot", "scale", "--points", "-o", tmp_path / "p.png", input=text, check=0).stdout
              for text in (as_csv.getvalue(), as_jsonl)]
    assert points[0] == points[1] and '"[64, 64]",2.0,' in points[0], points


def test_learning_curves_in_the_terminal(tmp_path):
    table = "optimizer.lr,seed,monitor,mode,epoch,val_acc\n" + "".join(
        f"{lr},{s},val_acc,max,{e},{0.5 + e * lr}\n" for lr in (0.1, 0.2) for s in (0, 1) for e in range(4))
    proc = tool("plot", "epoch", "--hue", "optimizer.lr", "--term", "-o", tmp_path / "c.png", input=table, check=0)
    assert "val_acc" in proc.stdout and "a: optimizer.lr=0.1" in proc.stdout and "b: optimizer.lr=0.2" in proc.stdout
    assert any(0x2800 <= ord(c) <= 0x28FF for c in proc.stdout)
    assert proc.stdout.splitlines()[-1].split()[:2] == ["0.2", "3"]


def test_text_renderer_scales_and_marks_points():
    text = textplot.render([("s", [1, 10, 100], [0.0, 1.0, 0.5])], width=20, height=5, logx=True)
    rows = text.splitlines()
    assert rows[1].startswith("1 |") and "b" not in text
    grid = [r.split("|", 1)[1] for r in rows[1:6]]
    assert grid[0][10] == "a" and grid[4][0] == "a" and grid[2][19] == "a"  # top middle, bottom left, middle right
    assert "(log scale)" in text


@pytest.mark.parametrize("stdin,args,message", [
    ("", ["lr"], "stdin is empty"),
    ("{not json\n", ["lr"], "not a collect table"),
    (TABLE, ["momentum"], "no column 'momentum'"),
    (TABLE, ["lr", "--hue", "opt"], "no column 'opt'"),
    ("lr,best_val_acc\n0.1,\n", ["lr", "--y", "best_val_acc"], "no row has both"),
    ("lr,best_val_acc\n0.1,0.5\n", ["lr"], "names no monitored metric"),
    ("lr,monitor,best_a,best_b\n0.1,a,1,2\n0.2,b,1,2\n", ["lr"], "monitor different metrics (a, b)"),
])
def test_bad_tables_exit_2(tmp_path, stdin, args, message):
    proc = tool("plot", *args, input=stdin, check=2, cwd=tmp_path)
    assert message in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "plots").exists()


def test_words_on_x(tmp_path):
    table = "opt,seed,monitor,best_val_acc\n" + "".join(
        f"{opt},{seed},val_acc,{acc}\n" for opt, seed, acc in (("sgd", 0, 0.9), ("sgd", 1, 0.92), ("adam", 0, 0.95),
                                                                 ("adam", 1, 0.94)))
    proc = tool("plot", "opt", "--term", "-o", tmp_path / "o.png", input=table, check=0)
    assert "adam" in proc.stdout.splitlines()[-4] and proc.stdout.splitlines()[-1].split()[:2] == ["adam", "0.945"]
    assert (tmp_path / "o.png").exists()


def test_a_list_valued_hyperparameter_in_json_lines_is_a_group(tmp_path):
    rows = [{"hidden": h, "seed": s, "lr": 0.1, "monitor": "val_acc", "best_val_acc": acc + s / 10}
            for h, acc in (([64, 64], 0.5), ([32], 0.7)) for s in (0, 1)]
    proc = tool("plot", "lr", "-o", tmp_path / "h.png", input="".join(json.dumps(r) + "\n" for r in rows), check=0)
    assert [line.split("  ")[0] for line in proc.stdout.splitlines()[1:]] == ["[32]", "[64, 64]"]
    assert "one line per hidden, mean ± std over 2 seeds" in proc.stderr


def sh(script, cwd):
    """A pipeline as a user types it (bash -o pipefail); returns (stdout, stderr)."""
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout, proc.stderr


def test_a_regression_sweep_plots_its_monitor(tmp_path, results_dir):
    root = results_dir / "reg"
    for lr in (0.01, 0.1, 1.0):
        for seed in (0, 1):
            write_run(root / f"lr={lr}_seed={seed}", {"optimizer.lr": lr, "training_loop.seed": seed},
                      regression(lr, seed), "val_mse", "min")
    collect = f"collect {shlex.quote(str(root))}"
    for y in ("", " --y val_mse", " --y best_val_mse"):
        out, err = sh(f"{collect} | plot lr{y}", tmp_path)
        assert out.splitlines()[0].split()[:3] == ["best", "lr", "best_val_mse"]
        assert out.splitlines()[1].split()[:2] == ["0.1", "0.505"]  # the lowest, as the runs' mode says
        assert "lowest (the runs' mode for val_mse)" in err and (tmp_path / "plots/best_val_mse_vs_lr.png").exists()
    out, _ = sh(f"collect --history {shlex.quote(str(root))} | plot epoch --points", tmp_path)
    assert {r["epoch"]: r["n"] for r in csv.DictReader(io.StringIO(out)) if r["optimizer.lr"] == "0.1"} == {
        "0": "2", "1": "2", "2": "2"}  # the monitor, val_mse, per epoch


def test_the_goal_comes_from_the_mode_not_the_name(tmp_path):
    table = "lr,monitor,mode,best_val_wer\n0.1,val_wer,min,0.2\n0.2,val_wer,min,0.1\n0.3,val_wer,min,0.3\n"
    out, err = sh(f"printf %s {shlex.quote(table)} | plot lr", tmp_path)
    assert out.splitlines()[1].split()[:2] == ["0.2", "0.1"]
    assert "lowest (the runs' mode for val_wer)" in err
    out, err = sh(f"printf %s {shlex.quote(table)} | plot lr --y best_val_wer --goal max", tmp_path)
    assert out.splitlines()[1].split()[:2] == ["0.3", "0.3"] and "highest (--goal)" in err


@pytest.fixture
def curves(results_dir):
    """Learning curves of 3 learning rates x 2 weight decays x 2 seeds, written as train writes them."""
    root = results_dir / "curves"
    for lr in (0.1, 0.2, 0.3):
        for wd in (0.0, 0.5):
            for seed in (0, 1):
                make_run(root, f"lr={lr}_wd={wd}_seed={seed}", {"optimizer.lr": lr, "optimizer.weight_decay": wd,
                                                                 "training_loop.seed": seed},
                         [round(0.5 + e * lr - wd / 10 + seed / 100, 4) for e in range(3)])
    return root


def test_curves_average_only_over_seeds(tmp_path, curves):
    out, err = sh(f"collect --history {shlex.quote(str(curves))} | plot epoch --points", tmp_path)
    points = list(csv.DictReader(io.StringIO(out)))
    assert list(points[0]) == ["optimizer.lr", "weight_decay", "epoch", "mean", "std", "n", "low", "high"]
    assert len(points) == 3 * 2 * 3 and {p["n"] for p in points} == {"2"}
    assert "one line per optimizer.lr, weight_decay, mean ± std over 2 seeds" in err
    first = points[2]  # lr 0.1, wd 0.0, epoch 2: (0.7 + 0.71) / 2
    assert (first["optimizer.lr"], first["weight_decay"], first["epoch"], first["mean"]) == ("0.1", "0.0", "2",
                                                                                             "0.705")
    out, err = sh(f"collect --history {shlex.quote(str(curves))} | plot epoch --hue weight_decay --term -o c.png",
                  tmp_path)
    assert "a: weight_decay=0.0, optimizer.lr=0.1" in out and "f: weight_decay=0.5, optimizer.lr=0.3" in out
    out, err = sh(f"collect {shlex.quote(str(curves))} | plot lr", tmp_path)
    assert [line.split()[:2] for line in out.splitlines()] == [["weight_decay", "best"], ["0.0", "0.3"],
                                                               ["0.5", "0.3"]]
    assert "mean ± std over 2 seeds" in err


def test_rows_that_are_not_seeds_are_not_called_seeds(tmp_path, curves):
    table = "lr,monitor,best_val_loss\n0.1,val_loss,1\n0.1,val_loss,3\n"
    _, err = sh(f"printf %s {shlex.quote(table)} | plot lr", tmp_path)
    assert "mean ± std over 2 rows" in err
    _, err = sh(f"printf %s {shlex.quote(table.replace('lr,', 'lr,seed,').replace('0.1,', '0.1,0,'))} | plot lr",
                tmp_path)
    assert "mean ± std over 2 rows" in err  # the same seed twice: not two seeds
    _, err = sh(f"collect --history {shlex.quote(str(curves))} | plot optimizer.lr --y val_acc", tmp_path)
    assert "mean ± std over 6 rows" in err  # 3 epochs of 2 seeds


@pytest.mark.parametrize("y,values,band", [
    ("best_val_acc", (1.0, 0.6), (0.5171573, 1.0)),  # an accuracy: clipped to [0, 1]
    ("best_val_loss", (0.0, 0.4), (-0.0828427, 0.4828427)),  # not bounded
    ("best_val_acc", (100.0, 60.0), (51.715729, 108.28427)),  # an accuracy in percent: not a fraction
])
def test_the_band_of_an_accuracy_stays_within_0_and_1(tmp_path, y, values, band):
    table = f"lr,seed,{y}\n" + "".join(f"0.1,{s},{v}\n" for s, v in enumerate(values))
    out, _ = sh(f"printf %s {shlex.quote(table)} | plot lr --y {y} --points", tmp_path)
    point, = csv.DictReader(io.StringIO(out))
    assert (float(point["low"]), float(point["high"])) == pytest.approx(band)


@pytest.mark.parametrize("y, goal, best", [("best_val_f1", "highest", "0.3"), ("best_val/loss", "lowest", "0.2"),
                                           ("best_val/acc_best", "highest", "0.3"), ("best_train_rmse", "lowest", "0.2")])
def test_without_a_mode_the_goal_comes_from_the_table_of_metric_names_and_a_slash_gives_a_plain_file(
        tmp_path, y, goal, best):
    table = f"lr,{y}\n0.1,0.2\n0.2,0.1\n0.3,0.3\n"
    proc = tool("plot", "lr", "--y", y, input=table, check=0, cwd=tmp_path)
    assert proc.stdout.splitlines()[1].split()[0] == best and f"best is the {goal} (the name {y}" in proc.stderr
    assert [p.name for p in (tmp_path / "plots").iterdir()] == [f"{y.replace('/', '-')}_vs_lr.png"]


def test_the_table_of_metric_names_matches_the_last_word():
    from runkit.rundir import modes
    assert [modes.mode_of(n) for n in ("val/acc", "val_accuracy", "test/f1", "val_auroc", "val/iou", "val_dice",
                                       "val/map", "val_precision", "val_recall", "val_r2")] == ["max"] * 10
    assert [modes.mode_of(n) for n in ("val/loss", "train_err", "val_error", "val_mse", "val_mae", "val_rmse",
                                       "val/nll", "val_perplexity", "train_loss_epoch")] == ["min"] * 9
    assert [modes.mode_of(n) for n in ("lr", "val_score", "epoch", "val/lossy")] == [None] * 4
