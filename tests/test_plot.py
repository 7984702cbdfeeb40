"""plot: PNG, best-X summary, log scale, learning curves, the terminal renderer, bad tables."""
import json

import pytest

from conftest import tool
from runkit import textplot

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
    table = "opt,seed,monitor,best_val_acc\nsgd,0,val_acc,0.9\nsgd,1,val_acc,0.92\nadam,0,val_acc,0.95\nadam,1,val_acc,0.94\n"
    proc = tool("plot", "opt", "--term", "-o", tmp_path / "o.png", input=table, check=0)
    assert "adam" in proc.stdout.splitlines()[-4] and proc.stdout.splitlines()[-1].split()[:2] == ["adam", "0.945"]
    assert (tmp_path / "o.png").exists()
