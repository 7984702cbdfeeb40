"""No process but the run holds its lock, and none outlives it: a run killed with -9 during validation, whose
validation loader has a worker, can be rerun at once, and resumes exactly."""
import os
import time

import pytest

from conftest import REPO, tool, without_time
from runkit.rundir import runs

pytestmark = pytest.mark.usefixtures("one_thread")

MODULE = '''
"""The example's data with a validation loader of one worker and a helper process of its own (each writes
down its pid and which of its fds lead to a run's lock), and a callback that kills its process in the middle
of a validation."""
import os
import signal
import time

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from my_project.lit import MyData, Noisy


def note(kind):
    held = [fd for fd in os.listdir("/proc/self/fd")
            if os.path.realpath(f"/proc/self/fd/{fd}").endswith(os.sep + ".lock")]
    with open(os.path.join(os.environ["WORKERS_DIR"], f"{kind}_{os.getpid()}"), "w") as f:
        f.write(" ".join(held))


def note_worker(worker_id):
    note("worker")


def linger():
    note("helper")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1), os.dup2(null, 2)
    os.closerange(3, 4096)  # none of train's pipes: a lingering helper must not hold up whoever reads them
    time.sleep(600)
    os._exit(0)


class ValWorkers(MyData):
    def setup(self, stage=None):
        super().setup(stage)
        if stage == "fit" and os.fork() == 0:  # a process of the user's own that would outlive a killed run
            linger()

    def val_dataloader(self):
        return DataLoader(Noisy(*self.splits["val"], noise=0.0), batch_size=50, num_workers=1,
                          worker_init_fn=note_worker)


class KillInValidation(pl.Callback):
    """SIGKILL to this process at the third validation batch of epoch `epoch`, once."""

    def __init__(self, epoch=2, marker_dir="."):
        self.epoch, self.marker = epoch, os.path.join(marker_dir, "killed_in_validation")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if trainer.current_epoch + 1 == self.epoch and batch_idx == 2 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
'''


def gone(pid, wait):
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status") as f:
                if "\nState:\tZ" in f.read():
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_a_run_killed_during_validation_with_loader_workers_reruns_at_once_and_resumes_exactly(tmp_path, monkeypatch):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "val_workers.py").write_text(MODULE)
    workers = tmp_path / "workers"
    workers.mkdir()
    monkeypatch.setenv("WORKERS_DIR", str(workers))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "code"), str(REPO / "examples"),
                                                      os.environ["PYTHONPATH"]]))
    config = tmp_path / "val_workers.gin"
    config.write_text("training_loop.task = 'my_project.lit.MyModel'\ntraining_loop.data = 'val_workers.ValWorkers'\n"
                      "training_loop.test = True\n")
    bindings = ("ValWorkers.n_train=640#training_loop.n_epochs=3#training_loop.checkpoint_every_n_steps=3"
                "#training_loop.loggers=[]")
    reference, run = tmp_path / "uninterrupted", tmp_path / "interrupted"
    tool("train", reference, config, "-b", bindings, check=0)
    for note in workers.iterdir():
        note.unlink()
    kill = f"training_loop.callbacks=['val_workers.KillInValidation']#KillInValidation.marker_dir='{tmp_path}'"
    assert tool("train", run, config, "-b", bindings, "-b", kill).returncode == -9
    assert (tmp_path / "killed_in_validation").exists()
    notes = sorted(note.name.split("_")[0] for note in workers.iterdir())
    assert notes == ["helper", "worker", "worker"]  # the validation workers of epochs 1 and 2 (not persistent)
    assert all(note.read_text() == "" for note in workers.iterdir()), "a forked process held the run's lock"
    assert all(gone(int(note.name.split("_")[1]), wait=3) for note in workers.iterdir()), "a process outlived the run"
    resumed = tool("train", run, config, "-b", bindings, "-b", kill, check=0)
    assert "resumed at epoch 2, step " in resumed.stderr
    assert without_time(runs.read_history(run)) == without_time(runs.read_history(reference))
    assert runs.read_json(run, runs.METRICS)["test"] == runs.read_json(reference, runs.METRICS)["test"]
