"""A project of your own (examples/my_project: plain Lightning, a plain shuffled DataLoader with 2 workers
and noise drawn in __getitem__, classes named by import path): killed with -9 in the middle of epochs, the
rerun ends with the uninterrupted run's history and metrics."""
import json
import os
import time
from pathlib import Path

import pytest

from conftest import REPO, tool
from helpers.same_run import assert_same_run
from runkit.rundir import runs

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLE = REPO / "examples" / "my_project" / "my_project.gin"
# 10 steps an epoch, 4 epochs, a checkpoint every 3 steps; the kills come 2 steps after one
SMALL = "MyData.n_train=640#training_loop.n_epochs=4#training_loop.checkpoint_every_n_steps=3#training_loop.loggers=[]"
KILLS = (5, 17, 29)


@pytest.fixture
def project_path(monkeypatch):
    path = os.pathsep.join([str(REPO / "examples"), str(REPO / "tests" / "plugins"), os.environ["PYTHONPATH"]])
    monkeypatch.setenv("PYTHONPATH", path)


def killed_three_times(tmp_path, config, bindings, killer="kill_at.KillAt", train=None):
    """(reference run folder, interrupted run folder): the second killed at each step of KILLS, then rerun;
    each `train` cold, or by `train` (warm.train: forked warm, killed there as runbatch's runs are)."""
    train = train or (lambda *argv, **kwargs: tool("train", *argv, **kwargs))
    reference, run = tmp_path / "uninterrupted", tmp_path / "interrupted"
    train(reference, config, "-b", bindings, check=0)
    kill = (f"training_loop.callbacks=['{killer}']#{killer.rsplit('.', 1)[1]}.steps={list(KILLS)}"
            f"#{killer.rsplit('.', 1)[1]}.marker_dir='{tmp_path}'")
    for attempt, step in enumerate(KILLS, 1):
        done = train(run, config, "-b", bindings, "-b", kill)
        assert done.returncode == -9, done.stderr
        assert (tmp_path / f"killed_at_{step}").exists()
        assert runs.read_json(run, runs.META)["attempts"] == attempt
    resumed = train(run, config, "-b", bindings, "-b", kill, check=0)
    assert "resumed at epoch 3, step 27" in resumed.stderr
    return reference, run


def unified_copy(warm, tmp_path):
    """The example written on the unified package (`import lightning.pytorch as pl`): lit.py with that one line
    changed, as package `my_project_unified` in the warm runs' code folder, and its config in tmp_path."""
    package = Path(warm.code) / "my_project_unified"
    lit = (REPO / "examples" / "my_project" / "lit.py").read_text()
    assert "import pytorch_lightning as pl\n" in lit
    if not package.exists():
        package.mkdir()
        (package / "lit.py").write_text(lit.replace("import pytorch_lightning as pl\n", "import lightning.pytorch as pl\n"))
    config = tmp_path / "unified.gin"
    config.write_text(EXAMPLE.read_text().replace("'my_project.lit.", "'my_project_unified.lit."))
    return config


@pytest.mark.slow
@pytest.mark.parametrize("package", ["pytorch_lightning", "lightning"])
def test_the_example_killed_three_times_mid_epoch_resumes_exactly(tmp_path, project_path, warm, package):
    """The example as written (pytorch_lightning) and its copy on the unified package (`lightning`), warm."""
    if package == "lightning":
        config = unified_copy(warm, tmp_path)
        reference, run = killed_three_times(tmp_path, config, SMALL, killer="kill_at.LightningKillAt", train=warm.train)
    else:
        reference, run = killed_three_times(tmp_path, EXAMPLE, SMALL, train=warm.train)
    assert_same_run(run, reference)
    meta = runs.read_json(run, runs.META)
    assert meta["lightning_package"] == package
    assert meta["data_resume"] == {"loader": "MyData.train_dataloader", "exact": True}
    assert "data: MyData.train_dataloader resumes exactly" in (run / runs.LOG).read_text()


def test_config_gin_holds_the_trainer_bindings_on_either_package(tmp_path, project_path, warm):
    """gin's operative config knows pytorch_lightning's Trainer only: a run on `lightning` gets the same
    `trainer` section in config.gin, in the same place."""
    unified = unified_copy(warm, tmp_path)
    bindings = "MyData.n_train=64#training_loop.n_epochs=1#training_loop.loggers=[]#trainer.gradient_clip_val=0.5"
    texts = []
    for name, config in (("classic", EXAMPLE), ("unified", unified)):
        warm.train(tmp_path / name, config, "-b", bindings, check=0)
        texts.append((tmp_path / name / runs.CONFIG).read_text().replace("my_project_unified.", "my_project."))
    assert "# Parameters for trainer:\n# " in texts[0] and "trainer.gradient_clip_val = 0.5\n" in texts[0]
    assert texts[1] == texts[0]


def test_a_callback_of_the_other_package_is_refused_before_anything_is_written(tmp_path, project_path, warm):
    config = unified_copy(warm, tmp_path)
    done = warm.train(tmp_path / "run", config, "-b", "training_loop.callbacks=['kill_at.KillAt']", check=2)
    assert done.stderr.count("\n") == 1, done.stderr
    assert "callback 'kill_at.KillAt' is written on pytorch_lightning, but the task is written on lightning" \
        in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_wrong_import_path_names_what_is_missing(tmp_path, project_path, warm):
    done = warm.train(tmp_path / "run", EXAMPLE, "-b", "training_loop.task='my_project.lit.MyModle'", check=2)
    assert "module 'my_project.lit' has no attribute 'MyModle'" in done.stderr, done.stderr
    done = warm.train(tmp_path / "run", EXAMPLE, "-b", "training_loop.data='my_projet.lit.MyData'", check=2)
    assert "cannot import module 'my_projet.lit'" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and not (tmp_path / "run").exists()


def test_a_failure_before_the_first_step_is_bad_config_and_leaves_no_folder(tmp_path, warm):
    """One line, though the Trainer was built: the warm process imported lightning.pytorch (tests/plugins/kill_at.py),
    whose logger then carries even a pytorch_lightning Trainer's rank-zero lines (GPU available, ...)."""
    run = tmp_path / "run"
    done = warm.train(run, REPO / "configs" / "digits_mlp.gin", "-b", "digits.batch_size='abc'", check=2)
    assert done.stderr.count("\n") == 1, done.stderr
    assert "data 'digits' failed before the first training step: TypeError" in done.stderr
    assert "(its bindings: digits.batch_size='abc')" in done.stderr and "rerun" not in done.stderr
    assert not run.exists()


@pytest.mark.slow
def test_an_iterable_dataset_trains_and_resumes_approximately_and_says_so(tmp_path, project_path, warm):
    run, config = tmp_path / "stream", tmp_path / "stream.gin"
    config.write_text("training_loop.task = 'my_project.lit.MyModel'\ntraining_loop.data = 'stream.StreamData'\n")
    argv = [run, config, "-b", "training_loop.n_epochs=2#training_loop.loggers=[]"
            "#training_loop.checkpoint_every_n_steps=3",
            "-b", f"training_loop.callbacks=['kill_at.KillAt']#KillAt.steps=[4]#KillAt.marker_dir='{tmp_path}'"]
    assert warm.train(*argv).returncode == -9
    resumed = warm.train(*argv, check=0)
    assert "resumed at epoch 1, step 3" in resumed.stderr
    said = {"loader": "StreamData.train_dataloader", "exact": False,
            "reason": "an IterableDataset (Stream): its order is its own"}
    assert runs.read_json(run, runs.META)["data_resume"] == said
    assert "data: StreamData.train_dataloader resumes approximately, as Lightning resumes it: an IterableDataset" \
        in (run / runs.LOG).read_text()
    assert len(runs.read_history(run)) == 2
    table = tool("collect", tmp_path, "--format", "jsonl", check=0).stdout
    assert '"resume": "approximate"' in table or '"resume":"approximate"' in table, table


def gone(pid, wait=60):
    """Whether the process ended (or is a zombie waiting to be reaped) within `wait` seconds."""
    for _ in range(wait * 10):
        try:
            with open(f"/proc/{pid}/status") as f:
                if "\nState:\tZ" in f.read():
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_a_two_process_ddp_run_with_a_plain_dataloader_killed_mid_epoch_resumes_exactly(tmp_path, project_path):
    """DDP on 2 CPU processes (gloo), each loading its share of the plain DataLoader with 2 workers: rank 0
    killed with -9 in the middle of epoch 2 takes rank 1 with it, and the rerun ends as the uninterrupted run."""
    bindings = ("MyData.n_train=1280#training_loop.n_epochs=3#training_loop.checkpoint_every_n_steps=3"
                "#training_loop.loggers=[]#trainer.accelerator='cpu'#trainer.devices=2#trainer.strategy='ddp'")
    reference, run = tmp_path / "uninterrupted", tmp_path / "interrupted"
    tool("train", reference, EXAMPLE, "-b", bindings, check=0)
    kill = f"training_loop.callbacks=['kill_at.KillAt']#KillAt.steps=[17]#KillAt.rank=0#KillAt.marker_dir='{tmp_path}'"
    done = tool("train", run, EXAMPLE, "-b", bindings, "-b", kill)
    assert done.returncode == -9, done.stderr
    ranks = runs.read_json(run, runs.META)["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and gone(ranks[1]["pid"])
    resumed = tool("train", run, EXAMPLE, "-b", bindings, "-b", kill, check=0)
    assert "resumed at epoch 2, step 15" in resumed.stderr  # 10 steps an epoch on each rank
    assert_same_run(run, reference)
    assert [row["step"] for row in runs.read_history(run)] == [10, 20, 30]
    assert runs.read_json(run, runs.META)["data_resume"] == {"loader": "MyData.train_dataloader", "exact": True}


@pytest.mark.slow
def test_a_sampler_without_state_dict_trains_and_resumes_approximately_and_says_so(tmp_path, project_path, warm):
    run, config = tmp_path / "sampler", tmp_path / "sampler.gin"
    config.write_text("training_loop.task = 'my_project.lit.MyModel'\ntraining_loop.data = 'own_sampler.SamplerData'\n")
    argv = [run, config, "-b", "training_loop.n_epochs=2#training_loop.loggers=[]"
            "#training_loop.checkpoint_every_n_steps=3",
            "-b", f"training_loop.callbacks=['kill_at.KillAt']#KillAt.steps=[14]#KillAt.marker_dir='{tmp_path}'"]
    assert warm.train(*argv).returncode == -9
    resumed = warm.train(*argv, check=0)
    assert "resumed at epoch 2, step 12" in resumed.stderr
    said = {"loader": "SamplerData.train_dataloader", "exact": False, "reason": "its own sampler (Reversed)"}
    assert runs.read_json(run, runs.META)["data_resume"] == said
    assert ("data: SamplerData.train_dataloader resumes approximately, as Lightning resumes it: its own sampler "
            "(Reversed)") in (run / runs.LOG).read_text()
    assert [row["step"] for row in runs.read_history(run)] == [10, 20]


@pytest.mark.slow
def test_a_resumed_attempt_computes_with_the_first_attempts_thread_count(tmp_path, project_path):
    """Started with one torch thread (as `runbatch -j 2` starts a job), resumed by hand in a shell of two: the
    rerun trains with one, and ends bitwise as the uninterrupted one-thread run."""
    bindings = "MyData.n_train=640#training_loop.n_epochs=2#training_loop.checkpoint_every_n_steps=3#training_loop.loggers=[]"
    reference, run, seen = tmp_path / "uninterrupted", tmp_path / "interrupted", tmp_path / "threads.txt"
    tool("train", reference, EXAMPLE, "-b", bindings, check=0)
    watch = (f"training_loop.callbacks=['kill_at.KillAt', 'threads.Threads']#KillAt.steps=[5]"
             f"#KillAt.marker_dir='{tmp_path}'#Threads.path='{seen}'")
    assert tool("train", run, EXAMPLE, "-b", bindings, "-b", watch).returncode == -9
    assert runs.read_json(run, runs.META)["torch_threads"] == 1
    resumed = tool("train", run, EXAMPLE, "-b", bindings, "-b", watch, check=0,
                   env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert "resumed at epoch 1, step 3" in resumed.stderr
    assert seen.read_text() == "1\n1\n"
    assert_same_run(run, reference)


TEMPLATE = REPO / "examples" / "my_project" / "template.gin"


def test_a_template_shaped_module_gets_its_net_and_partials_from_gin(tmp_path, project_path, monkeypatch, warm):
    """The net built from its own bindings, the optimizer and scheduler as partials of the classes named by
    import path: their bindings train, config.gin says so, and save_hyperparameters keeps all three."""
    import functools

    import torch
    run = tmp_path / "run"
    done = warm.train(run, TEMPLATE, "-b", "training_loop.n_epochs=2#training_loop.loggers=[]#torch.optim.Adam.lr=0.02",
                      check=0)
    history = runs.read_history(run)
    assert [row["lr"] for row in history] == [0.02, 0.02] and "val/acc" in history[0]
    assert json.loads(done.stdout)["mode"] == "max"
    text = (run / runs.CONFIG).read_text()
    for line in ("Classifier.optimizer = @torch.optim.Adam", "torch.optim.Adam.lr = 0.02", "DenseNet.hidden = 32",
                 "Classifier.scheduler = @torch.optim.lr_scheduler.ReduceLROnPlateau",
                 "torch.optim.lr_scheduler.ReduceLROnPlateau.patience = 1"):
        assert line + "\n" in text, line
    monkeypatch.syspath_prepend(str(REPO / "examples"))  # the checkpoint names my_project.template.DenseNet
    hparams = torch.load(runs.checkpoint_path(run), weights_only=False)["hyper_parameters"]
    optimizer, scheduler = hparams["optimizer"], hparams["scheduler"]
    assert isinstance(optimizer, functools.partial) and optimizer.func is torch.optim.Adam
    assert optimizer.keywords == {"lr": 0.02, "weight_decay": 0.0001}
    assert scheduler.func is torch.optim.lr_scheduler.ReduceLROnPlateau
    assert scheduler.keywords == {"factor": 0.5, "patience": 1}
    assert type(hparams["net"]).__name__ == "DenseNet" and hparams["net"].model[1].out_features == 32


def test_optimizer_bindings_for_a_task_with_its_own_optimizers_are_refused(tmp_path, project_path, warm):
    run = tmp_path / "run"
    done = warm.train(run, EXAMPLE, "-b", "optimizer.lr=0.5#MyData.n_train=64#training_loop.loggers=[]", check=2)
    assert done.stderr.splitlines()[-1].startswith(
        "train: optimizer.lr cannot take effect: the run never uses it (the task's configure_optimizers does not "
        "return runkit.training.optim.configure(self)"), done.stderr
    assert done.stdout == "" and not run.exists()


@pytest.mark.slow
def test_task_arguments_from_setup_the_projects_commit_and_hparams_on_lightning(tmp_path, monkeypatch):
    """A project in a repository of its own, on the `lightning` package: the task's vocab_size exists only once
    the data module is set up; meta.json names the project's commit; TensorBoard gets the HParams summary; a
    metric logged per step only is no history column."""
    package = tmp_path / "project" / "chars_project"
    package.mkdir(parents=True)
    text = (REPO / "tests" / "plugins" / "chars.py").read_text()
    (package / "chars.py").write_text(text.replace("import pytorch_lightning as pl\n", "import lightning.pytorch as pl\n"))
    (tmp_path / "project" / ".gitignore").write_text("__pycache__/\n")
    git = ["git", "-C", tmp_path / "project", "-c", "user.name=t", "-c", "user.email=t@t"]
    tool(*git, "init", "-q", check=0)
    tool(*git, "add", ".", check=0)
    tool(*git, "commit", "-qm", "the project", check=0)
    commit = tool(*git, "rev-parse", "HEAD", check=0).stdout.strip()
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path / 'project'}{os.pathsep}{os.environ['PYTHONPATH']}")
    config = tmp_path / "chars.gin"
    config.write_text("training_loop.task = 'chars_project.chars.NextChar'\n"
                      "training_loop.data = 'chars_project.chars.Chars'\n")
    run = tmp_path / "run"
    tool("train", run, config, check=0)
    assert "train/batch" not in runs.read_history(run)[0] and "train_loss" in runs.read_history(run)[0]
    meta = runs.read_json(run, runs.META)
    assert meta["lightning_package"] == "lightning"
    assert (meta["project"]["module"], meta["project"]["git_commit"], meta["project"]["git_dirty"]) == (
        "chars_project.chars", commit, False)
    assert meta["git_commit"] != commit  # runkit's own, beside it
    events = [p.read_bytes() for p in (run / runs.TENSORBOARD).rglob("events.out.tfevents.*")]
    assert any(b"_hparams_/session_start_info" in e for e in events)

    done = tool("train", tmp_path / "other", config, "-b", "training_loop.task='chars_project.chars.NeedsDepth'",
                check=2)
    assert done.stderr.splitlines()[-1] == (
        "train: task 'chars_project.chars.NeedsDepth' needs depth, which no binding gives and data module "
        "'chars_project.chars.Chars' does not have after setup(): bind NeedsDepth.depth, or set it on the data "
        "module (self.depth = ... in __init__ or setup())"), done.stderr
    assert not (tmp_path / "other").exists()
