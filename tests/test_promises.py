"""The README's and docs' promises about training, each shown by what it does in real `train` runs on
digits (CPU, one thread): the learning-rate schedule's formula, across a resume too; the optimizers; that
best.ckpt holds the best epoch; that training_loop.seed is used; the mode inferred from a monitor's name;
stop_on_nan = False; collect and plot reading folders that train wrote; and, on a tiny
CIFAR-10 with a test split, that metrics.json's `test` is best.ckpt tested."""
import csv
import io
import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO, tool, without_time
from helpers.kills import assert_killed, kill_callback, resume_point
from helpers.same_run import assert_same_run
from runkit.rundir import runs

MLP = REPO / "configs" / "digits_mlp.gin"
EVALUATE = REPO / "tests" / "helpers" / "evaluate.py"
STEPS, EPOCHS, WARMUP, MIN_FACTOR, LR = 23, 4, 30, 0.2, 0.01  # 23 steps an epoch in batches of 64
COSINE = (f"training_loop.n_epochs={EPOCHS}#digits.batch_size=64#training_loop.checkpoint_every_n_steps=10"
          f"#optimizer.name='adamw'#optimizer.lr={LR}#lr_schedule.name='cosine'#lr_schedule.warmup_steps={WARMUP}"
          f"#lr_schedule.min_factor={MIN_FACTOR}#training_loop.loggers=[]"
          "#training_loop.monitor='lr'#training_loop.mode='max'")  # best = the epoch of the highest rate: epoch 2
BASE = "training_loop.n_epochs=1#digits.batch_size=64#training_loop.loggers=[]"
PLAIN = {  # one epoch each, trained side by side
    "seed0": BASE,
    "seed1_weights": BASE + "#training_loop.seed=1#digits.seed=0",  # only the initial weights change
    "seed1": BASE + "#training_loop.seed=1",                         # the weights and the data order
    "seed1_again": BASE + "#training_loop.seed=1",                   # ... and nothing else: the same run
    "adam": BASE + "#optimizer.name='adam'#training_loop.monitor='train_acc'",
    "nesterov": BASE + "#optimizer.nesterov=True#training_loop.monitor='train_loss'",
    "nan": BASE + "#optimizer.lr=1e12#training_loop.stop_on_nan=False",
}


def cosine_factor(step, total):
    """docs' formula, written out again: linear warm-up to the base rate, then a cosine down to min_factor."""
    if step < WARMUP:
        return (step + 1) / WARMUP
    return MIN_FACTOR + (1 - MIN_FACTOR) * (1 + math.cos(math.pi * (step - WARMUP) / (total - WARMUP))) / 2


@pytest.fixture(scope="module")
def cosine(tmp_path_factory, one_thread, warm):
    """(run folder, argv maker): one run with warm-up, cosine and AdamW, the kill callback in its config."""
    folder = tmp_path_factory.mktemp("cosine")
    with pytest.MonkeyPatch.context() as patch:
        config = kill_callback(folder, patch)
        argv = lambda run: ["train", run, MLP, config, "-b", COSINE]  # noqa: E731
        warm.train(*argv(folder / "run")[1:], check=0)
        yield folder / "run", argv, config


@pytest.fixture(scope="module")
def plain(tmp_path_factory, one_thread, warm):
    """The folder holding PLAIN's runs, each finished (train exit 0)."""
    root = tmp_path_factory.mktemp("plain")
    procs = {name: warm.start(["train", root / name, MLP, "-b", bindings]) for name, bindings in PLAIN.items()}
    for name, proc in procs.items():
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (name, err)
    return root


def test_the_lr_column_follows_warm_up_then_cosine_to_min_factor(cosine):
    history = runs.read_history(cosine[0])
    assert [row["step"] for row in history] == [STEPS * e for e in range(1, EPOCHS + 1)]
    for row in history:
        assert row["lr"] == pytest.approx(LR * cosine_factor(row["step"], STEPS * EPOCHS), rel=1e-6), row
    assert history[0]["lr"] < history[1]["lr"] and history[-1]["lr"] == pytest.approx(LR * MIN_FACTOR)


def test_cosine_resumes_exactly_after_a_kill_mid_schedule(cosine, tmp_path, monkeypatch, warm):
    run, argv, config = cosine
    killed = tmp_path / "killed"
    kill_callback(config.parent, monkeypatch)
    monkeypatch.setenv("KILL_AT", "33")  # 3 steps after the checkpoint at 30, the first step past warm-up
    assert_killed(warm.start(argv(killed)))
    monkeypatch.delenv("KILL_AT")
    assert resume_point(warm.train(*argv(killed)[1:], check=0).stderr) == (2, 30)
    assert_same_run(killed, run)


def evaluate(checkpoints, bindings, *configs, split="val"):
    """helpers/evaluate.py's figures for each checkpoint, in order (one process for all)."""
    argv = [sys.executable, EVALUATE, f"--split={split}", os.pathsep.join(map(str, checkpoints)), bindings, *configs]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    found = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(found) == len(checkpoints), proc.stdout
    return found


def test_best_ckpt_holds_the_best_epoch_not_the_last(cosine):
    run, _argv, config = cosine
    history = runs.read_history(run)
    best = max(history, key=lambda row: row["lr"])
    assert best["epoch"] == 2  # the highest rate: warm-up ends in epoch 2
    assert without_time([runs.read_json(run, runs.METRICS)["best"]]) == without_time([best])
    saved, last = evaluate([runs.best_checkpoint_path(run), runs.checkpoint_path(run)], COSINE, MLP, config)
    assert (saved["epoch"] + 1, saved["global_step"]) == (best["epoch"], best["step"])
    assert saved["val_acc"] == pytest.approx(best["val_acc"], abs=1e-6)  # its weights are that epoch's
    assert last["global_step"] == history[-1]["step"]
    assert last["val_acc"] == pytest.approx(history[-1]["val_acc"], abs=1e-6)


@pytest.mark.slow
def test_metrics_test_is_best_ckpt_tested_on_the_test_split(results_dir, one_thread, warm):
    """training_loop.test = True on a tiny CIFAR-10 (the test split is test_batch): metrics.json's `test` is
    what plain torch makes of best.ckpt's weights on that split. Best (epoch 2, the highest rate) is not
    last (epoch 4), and the last checkpoint's figures differ, so a test of the last weights would show."""
    from cifar_archive import write_cifar_archive
    write_cifar_archive(os.environ["DATA_DIR"], per_batch=20)  # 80 training images, 20 to test
    cnn, run = REPO / "configs" / "cnn.gin", results_dir / "tested"
    bindings = ("training_loop.n_epochs=4#training_loop.test=True#cifar10.download=False#cifar10.n_val=20"
                "#cifar10.batch_size=32#cnn.n_filters=8#training_loop.loggers=[]#lr_schedule.name='cosine'"
                "#lr_schedule.warmup_steps=6#training_loop.monitor='lr'#training_loop.mode='max'")  # 3 steps an epoch
    warm.train(run, cnn, "-b", bindings, check=0)
    metrics = runs.read_json(run, runs.METRICS)
    assert metrics["best"]["epoch"] == 2 and sorted(metrics["test"]) == ["test_acc", "test_loss"]
    best, last = evaluate([runs.best_checkpoint_path(run), runs.checkpoint_path(run)], bindings, cnn, split="test")
    assert best["epoch"] + 1 == 2
    for key in ("test_acc", "test_loss"):
        assert metrics["test"][key] == pytest.approx(best[key], abs=1e-5), key
    assert last["epoch"] + 1 == 4 and last["test_loss"] != pytest.approx(best["test_loss"], abs=1e-5)


def optimizer_group(run):
    import torch
    return torch.load(runs.checkpoint_path(run), map_location="cpu", weights_only=True)["optimizer_states"][0][
        "param_groups"][0]


def test_adam_adamw_and_nesterov_are_what_trains(plain, cosine):
    adamw, adam, nesterov, sgd = (optimizer_group(r) for r in (cosine[0], plain / "adam", plain / "nesterov",
                                                                plain / "seed0"))
    assert adamw.get("decoupled_weight_decay") is True and "betas" in adamw
    assert "betas" in adam and not adam.get("decoupled_weight_decay")
    assert nesterov["nesterov"] is True and nesterov["momentum"] == 0.9 and sgd["nesterov"] is False
    rows = {name: without_time(runs.read_history(plain / name)) for name in ("seed0", "adam", "nesterov")}
    assert rows["seed0"] != rows["adam"] and rows["seed0"] != rows["nesterov"]


def test_the_seed_sets_the_initial_weights_and_the_data_order(plain):
    rows = {name: without_time(runs.read_history(plain / name)) for name in ("seed0", "seed1_weights", "seed1",
                                                                            "seed1_again")}
    assert rows["seed0"] != rows["seed1_weights"]  # training_loop.seed seeds the weights
    assert rows["seed1_weights"] != rows["seed1"]  # ... and, unless digits.seed is bound, the data order
    assert rows["seed1"] == rows["seed1_again"]  # and nothing else does: fresh entropy would differ here too


@pytest.mark.parametrize("name, monitor, mode", [("adam", "train_acc", "max"), ("nesterov", "train_loss", "min"),
                                                 ("seed0", "val_acc", "max")])
def test_the_mode_follows_from_the_monitors_name(plain, name, monitor, mode):
    metrics = runs.read_json(plain / name, runs.METRICS)
    assert (metrics["monitor"], metrics["mode"]) == (monitor, mode)


def test_stop_on_nan_false_trains_on_through_nan(plain):
    run = plain / "nan"
    assert runs.status(run) == "finished" and not (run / runs.ERROR).exists()
    last = runs.read_history(run)[-1]
    assert last["step"] == STEPS  # the whole epoch trained
    assert "train_loss" in last and (last["train_loss"] is None or math.isnan(last["train_loss"]))  # NaN: empty
    final = runs.read_json(run, runs.METRICS)["final"]
    assert "train_loss" in final and final["train_loss"] is None  # logged NaN (null), not missing


def test_collect_and_plot_read_the_folders_train_wrote(plain, tmp_path):
    table = list(csv.DictReader(io.StringIO(tool("collect", plain, check=0).stdout)))
    assert sorted(os.path.basename(row["run_dir"]) for row in table) == sorted(PLAIN)
    for row in table:
        metrics = runs.read_json(row["run_dir"], runs.METRICS)
        assert row["status"] == "finished" and row["monitor"] == metrics["monitor"], row
        if row["monitor"] == "val_acc":
            assert float(row["best_val_acc"]) == pytest.approx(metrics["best"]["val_acc"]), row
    history = tool("collect", "--history", plain, check=0).stdout
    assert len(list(csv.DictReader(io.StringIO(history)))) == len(PLAIN)  # one epoch each
    tool("plot", "epoch", "--y", "val_acc", "-o", tmp_path / "curves.png", input=history, check=0)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
