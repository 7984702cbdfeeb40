"""train as a user runs it: a real process on the digits data, its run folder, reruns and bad input, what its
loggers get (TensorBoard's HParams tab over a sweep, conftest.digits_sweep)."""
import json
import os
import re
import textwrap

import pytest

from conftest import REPO, tool, without_time
from helpers.same_run import assert_same_run
from runkit.rundir import lock, runs

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

MLP = REPO / "configs" / "digits_mlp.gin"
RUN_FILES = [runs.CONFIG, runs.BINDINGS, runs.COMMAND, runs.META, runs.HISTORY, runs.METRICS,
             runs.CHECKPOINTS + "/last.ckpt", runs.TENSORBOARD, runs.LOG, runs.HEARTBEAT, runs.FINISHED]


def snapshot(folder):
    """Every file under folder with its size and modification time: equal snapshots mean nothing was touched."""
    found = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            stat = os.stat(os.path.join(root, name))
            found[os.path.relpath(os.path.join(root, name), folder)] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def finished(tmp_path_factory, warm):
    """One finished digits_mlp run, shared by the tests that only read it or refuse to change it."""
    run = tmp_path_factory.mktemp("runs") / "mlp"
    proc = warm.train(run, MLP, check=0)
    return run, proc


def test_fresh_run_writes_the_whole_run_folder(finished):
    run, proc = finished
    for name in RUN_FILES:
        assert os.path.exists(run / name), name
    assert runs.status(run) == "finished"
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == runs.read_json(run, runs.METRICS)
    history = runs.read_history(run)
    assert [row["epoch"] for row in history] == list(range(1, 11))
    metrics = json.loads(lines[0])
    assert metrics["final"] == history[-1]
    assert metrics["best"]["val_acc"] == max(row["val_acc"] for row in history) > 0.8  # chance is 0.1
    assert runs.load_C(run)["optimizer.lr"] == 0.05
    assert "optimizer.momentum = 0.9" in (run / runs.CONFIG).read_text()
    meta = runs.read_json(run, runs.META)
    assert meta["git_commit"] and meta["torch"] and meta["end_time"] and meta["attempts"] == 1
    assert "epoch 10/10" in (run / runs.LOG).read_text() and "epoch 10/10" in proc.stderr
    assert os.listdir(run / runs.TENSORBOARD)


def test_rerunning_a_finished_run_does_nothing(finished, warm):
    run, first = finished
    before = snapshot(run)
    proc = warm.train(run, MLP, check=0)
    assert json.loads(proc.stdout) == json.loads(first.stdout) and proc.stdout.count("\n") == 1
    assert snapshot(run) == before


def test_a_changed_binding_is_refused_naming_it(finished, warm):
    run, _ = finished
    before = snapshot(run)
    proc = warm.train(run, MLP, "-b", "optimizer.lr=0.1#training_loop.n_epochs=12", check=2)
    assert proc.stderr.count("\n") == 1 and "optimizer.lr: 0.05 -> 0.1" in proc.stderr
    assert "--restart" in proc.stderr and proc.stdout == ""
    assert snapshot(run) == before


def test_another_config_is_refused_naming_what_it_adds(finished, warm):
    run, _ = finished
    before = snapshot(run)
    proc = warm.train(run, REPO / "configs" / "digits_cnn.gin", check=2)
    assert proc.stderr.count("\n") == 1 and "cnn.n_filters: (unset) -> 16" in proc.stderr
    assert snapshot(run) == before


def test_more_epochs_continue_a_finished_run_and_restart_starts_over(tmp_path, finished, warm):
    from runkit.training.train import train
    run, _ = finished
    copy = tmp_path / "copy"
    tool("cp", "-r", run, copy, check=0)
    metrics = train(str(copy), [str(MLP)], ["training_loop.n_epochs=12"])  # the Python API
    history = runs.read_history(copy)
    assert len(history) == 12 and without_time(history[:10]) == without_time(runs.read_history(run))
    assert metrics["final"] == history[-1] and runs.status(copy) == "finished"
    assert "resumed at epoch 11" in (copy / runs.LOG).read_text()

    warm.train(copy, MLP, "--restart", check=0)
    assert_same_run(copy, run)
    assert runs.read_json(copy, runs.META)["attempts"] == 1


COLD = ("no_such_thing", "not of the form name.param=value", "missing.gin does not exist")


@pytest.mark.parametrize("args, says", [
    (["-b", "training_loop.no_such_thing=1"], "no_such_thing"),
    (["-b", "classification.model='transformer9000'"], "unknown model 'transformer9000'; known: "),
    (["-b", "trainer.max_epochs=3"], "trainer.max_epochs is runkit's to set: use training_loop.n_epochs"),
    (["-b", "trainer.gradient_clip_val='x'"], "gradient_clip_val"),
    (["-b", "optimizer.lr"], "not of the form name.param=value"),
    (["missing.gin"], "missing.gin does not exist"),
    (["-b", "training_loop.n_epochs=0"], "training_loop.n_epochs = 0: give a number of epochs, 1 or more"),
    (["-b", "training_loop.monitor='val_score'"], "bind training_loop.mode = 'max' or 'min'"),
    (["-b", "optimizer.lr=-1"], "optimizer: Invalid learning rate: -1 (its bindings: optimizer.lr=-1"),
    (["-b", "mlp.hidden='wide'"], "In call to configurable 'mlp'"),
    (["-b", "training_loop.loggers=['csv']#csv.bogus=1"], "'bogus'; In call to configurable 'csv'"),  # no address
])
def test_bad_input_exits_2_with_one_line_and_touches_nothing(tmp_path, args, says, warm):
    """Warm, but for a `train` of its own where the line comes before the imports (COLD) and for one that
    imports torch and Lightning first and must still say one line."""
    run = tmp_path / "run"
    configs = [MLP] if args[0] == "-b" else [tmp_path / args[0]]
    argv = [run, *configs, *(args if args[0] == "-b" else [])]
    proc = tool("train", *argv, check=2) if says in COLD else warm.train(*argv, check=2)
    assert says in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("train: ") and proc.stdout == ""
    assert not re.search(r"0x[0-9a-f]{6}", proc.stderr)  # no Python object's address
    assert not run.exists()


def test_a_monitor_never_logged_stops_at_the_first_validation_and_a_fixed_rerun_trains(tmp_path, warm):
    """Before a best checkpoint is chosen: the line lists what was logged, and the folder is as it was before
    train (here an empty folder a runner made), so the rerun with the monitor fixed starts afresh. EarlyStopping,
    which watches the run's monitor, leaves the word to that line."""
    run = tmp_path / "run"
    run.mkdir()
    proc = warm.train(run, MLP, "-b", "training_loop.monitor='val/acc'#training_loop.n_epochs=2"
                      "#training_loop.callbacks=['EarlyStopping']", check=2)
    last = proc.stderr.splitlines()[-1]
    assert last == ("train: training_loop.monitor = 'val/acc' is not among the metrics the task logged by the end "
                    "of epoch 1 (train_acc, train_loss, val_acc, val_loss, lr): bind training_loop.monitor to one "
                    "of them"), proc.stderr
    assert proc.stdout == "" and "epoch 1/2" not in proc.stderr and "Traceback" not in proc.stderr
    assert [p.name for p in run.iterdir() if not p.name.startswith(".")] == []
    proc = warm.train(run, MLP, "-b", "training_loop.monitor='val_loss'#training_loop.n_epochs=2", check=0)
    metrics = json.loads(proc.stdout)
    assert (metrics["monitor"], metrics["mode"]) == ("val_loss", "min")  # the table's mode for a loss
    assert metrics["best"]["val_loss"] == min(row["val_loss"] for row in runs.read_history(run))


def test_a_binding_the_run_never_uses_is_refused_naming_it(tmp_path, warm):
    """cnn.n_filters with the mlp model: gin never calls cnn, so the binding could not take effect."""
    run = tmp_path / "run"
    proc = warm.train(run, MLP, "-b", "cnn.n_filters=8#EarlyStopping.patience=2", check=2)
    assert proc.stderr.splitlines()[-1] == ("train: EarlyStopping.patience, cnn.n_filters cannot take effect: the run "
                                            "never uses them; drop the binding"), proc.stderr
    assert proc.stdout == "" and not run.exists()


@pytest.mark.parametrize("binding, says", [
    ("no_such_function.x=1", "No configurable matching 'no_such_function'"),
    ("optimizer.lr=fast", "not a literal"),
    ("optimizer.name='lbfgs'", "unknown optimizer.name 'lbfgs'"),
    ("training_loop.callbacks=['nope']", "unknown callback 'nope'"),
    ("mlp.hidden='wide'", "In call to configurable 'mlp'"),
])
def test_bad_config_raises_before_anything_is_written(tmp_path, binding, says):
    from runkit.training.train import train
    with pytest.raises(Exception, match=re.escape(says)) as caught:
        train(str(tmp_path / "run"), [str(MLP)], [binding])
    assert type(caught.value).__name__ in ("ConfigError", "UnknownName", "BindingError")
    assert not (tmp_path / "run").exists()


def test_a_run_held_by_another_process_is_refused(tmp_path, warm):
    run = tmp_path / "run"
    fd = lock.try_lock(run)
    try:
        proc = warm.train(run, MLP, check=2)
    finally:
        os.close(fd)
    assert "run is held by another process" in proc.stderr and os.listdir(run) == [runs.LOCK]


def test_nan_loss_fails_with_error_json_and_keeps_no_diverged_checkpoint(tmp_path, warm):
    run = tmp_path / "run"
    proc = warm.train(run, MLP, "-b", "optimizer.lr=1e12#training_loop.checkpoint_every_n_steps=5", check=1)
    assert "NaN" in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith("train: ")
    error = runs.read_json(run, runs.ERROR)
    assert error["type"] == "NonFiniteMetric" and runs.status(run) == "failed"
    assert not os.path.exists(run / runs.FINISHED) and proc.stdout == ""
    if (run / runs.CHECKPOINTS / "last.ckpt").exists():  # saved before the loss diverged, if at all
        import torch
        weights = torch.load(run / runs.CHECKPOINTS / "last.ckpt", weights_only=True)["state_dict"]
        assert all(torch.isfinite(w).all() for w in weights.values())


def test_a_failed_run_resumes_to_the_same_result(tmp_path, finished, warm):
    """A user's callback (tests/plugins/fail_once.py) fails the run once; its rerun resumes, warm as `finished`."""
    config = tmp_path / "fail.gin"
    config.write_text(textwrap.dedent(f"""\
        import fail_once
        training_loop.callbacks = ['fail_once']
        fail_once.at_step = 250
        fail_once.marker = '{tmp_path / "failed-once"}'
        """))
    run = tmp_path / "run"
    proc = warm.train(run, MLP, config, check=1)
    assert "injected failure" in proc.stderr and runs.status(run) == "failed"
    error = runs.read_json(run, runs.ERROR)  # written once, by the run's owner, with where it failed
    assert set(error) == {"error", "type", "time", "traceback"} and error["error"] == "injected failure"
    assert "fail_once.py" in error["traceback"] and error["traceback"].startswith("Traceback (most recent call last)")
    assert len(runs.read_history(run)) == 5  # 45 steps an epoch: failed in epoch 6

    warm.train(run, MLP, config, check=0)
    assert runs.status(run) == "finished" and not os.path.exists(run / runs.ERROR)
    reference, _ = finished
    assert_same_run(run, reference)
    assert runs.read_json(run, runs.META)["attempts"] == 2


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_one_run_folder(tmp_path):
    run = tmp_path / "run"
    proc = tool("train", run, MLP, "-b", "trainer.accelerator='cpu'#trainer.devices=2"
                "#trainer.strategy='ddp'#training_loop.n_epochs=3", check=0)
    assert proc.stdout.count("\n") == 1 and "MEMBER: 1/2" in (run / runs.LOG).read_text()
    history = runs.read_history(run)
    assert [row["step"] for row in history] == [23, 46, 69]  # 1437 images, 32 a batch, split over 2 ranks
    assert runs.status(run) == "finished" and history[-1]["val_acc"] > 0.8


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_text("notes"), "exists and is not a folder"),
    (lambda p: (p.mkdir(), (p / "notes.txt").write_text("mine")), "is not empty and not a run folder"),
    (lambda p: (p.mkdir(), (p / "lr01").mkdir(), (p / "lr01" / runs.FINISHED).write_text("")), "holds run folders"),
])
def test_train_refuses_what_is_not_a_run_folder_and_restart_keeps_it(tmp_path, make, says, warm):
    target = tmp_path / "target"
    make(target)
    before = snapshot(tmp_path)
    for extra in ([], ["--restart"]):
        proc = warm.train(target, MLP, *extra, check=2)
        assert says in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert snapshot(tmp_path) == before


def test_restart_removes_only_what_train_made(tmp_path, finished, warm):
    import shutil
    reference, _ = finished
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "notes.txt").write_text("my notes")
    (run / "figures").mkdir()
    warm.train(run, MLP, "--restart", "-b", "training_loop.n_epochs=1", check=0)
    assert (run / "notes.txt").read_text() == "my notes" and (run / "figures").is_dir()
    assert len(runs.read_history(run)) == 1


def test_loggers_by_name_write_inside_the_run_folder(tmp_path, warm):
    """TensorBoard by default; CSV and MLflow (a local file store: no server, no network) when chosen."""
    run = tmp_path / "run"
    warm.train(run, MLP, "-b", "training_loop.loggers=['tensorboard', 'csv', 'mlflow']#training_loop.n_epochs=2",
               check=0)
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(run / runs.TENSORBOARD))
    assert "val_acc" in (run / "csv" / "metrics.csv").read_text().splitlines()[0]
    logged = [path for path in (run / "mlruns").rglob("val_acc")]
    assert logged and len(logged[0].read_text().splitlines()) == 2  # one value per epoch


def test_early_stopping_watches_the_runs_monitor_and_a_rerun_is_done(tmp_path, warm):
    """A Lightning callback by name gets the run's monitor and mode unless bound; a run it stopped early is
    finished (a rerun trains nothing)."""
    run = tmp_path / "run"
    bindings = "training_loop.callbacks=['EarlyStopping']#EarlyStopping.patience=1#EarlyStopping.min_delta=1.0"
    proc = warm.train(run, MLP, "-b", bindings, check=0)
    metrics = json.loads(proc.stdout)
    assert metrics["stopped_early"] and len(runs.read_history(run)) == 2  # val_acc cannot improve by 1.0
    before = snapshot(run)
    warm.train(run, MLP, "-b", bindings, check=0)
    assert snapshot(run) == before


def test_lightnings_loggers_by_class_name_write_inside_the_run_folder(tmp_path, warm):
    run = tmp_path / "run"
    warm.train(run, MLP, "-b", "training_loop.loggers=['CSVLogger', 'MLFlowLogger']#training_loop.n_epochs=1"
         "#CSVLogger.flush_logs_every_n_steps=1", check=0)
    assert "val_acc" in (run / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert [path for path in (run / "mlruns").rglob("val_acc")]
    assert "CSVLogger.flush_logs_every_n_steps = 1" in (run / runs.CONFIG).read_text()


@pytest.mark.slow
def test_tensorboard_lists_the_sweep_in_its_hparams_tab(digits_sweep):
    from tensorboard.backend.event_processing import plugin_event_multiplexer
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2
    from tensorboard.util import tensor_util
    reader = plugin_event_multiplexer.EventMultiplexer()
    reader.AddRunsFromDirectory(str(digits_sweep))
    reader.Reload()
    content = reader.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    assert sorted(content) == sorted(f"lr={lr}_seed={s}/tb" for lr in ("0.01", "0.1") for s in (0, 1))
    for run, tags in content.items():
        parts = {tag: plugin_data_pb2.HParamsPluginData.FromString(raw) for tag, raw in tags.items()}
        start = parts[metadata.SESSION_START_INFO_TAG].session_start_info
        bindings = runs.load_C(digits_sweep / run.split("/")[0])
        assert set(start.hparams) == set(bindings)
        assert start.hparams["optimizer.lr"].number_value == bindings["optimizer.lr"]
        metrics = [m.name.tag for m in parts[metadata.EXPERIMENT_TAG].experiment.metric_infos]
        assert {"best_val_acc", "final_val_acc", "final_train_loss"} <= set(metrics)
        best = json.loads((digits_sweep / run.split("/")[0] / runs.METRICS).read_text())["best"]["val_acc"]
        logged = reader.Tensors(run, "best_val_acc")[0].tensor_proto
        assert float(tensor_util.make_ndarray(logged)) == pytest.approx(best, rel=1e-6)


def test_wandb_by_class_name_logs_offline_or_says_to_install_it(tmp_path, warm):
    """Weights & Biases offline (no account, no network) where wandb is installed; else exit 2, one line."""
    import importlib.util
    run = tmp_path / "run"
    done = warm.train(run, MLP, "-b", "training_loop.loggers=['WandbLogger']#training_loop.n_epochs=1")
    if importlib.util.find_spec("wandb") is None:
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "needs a package that is not installed (No module named 'wandb')" in done.stderr
        assert not run.exists()
    else:
        assert done.returncode == 0, done.stderr
        assert any(path.name.startswith("offline-run") for path in (run / "wandb").iterdir())
