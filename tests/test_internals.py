"""The versions of Lightning and gin that runkit's private accesses (runkit.training.internals) were checked
against: a run on another version trains, and says so once at start, in train.log and in meta.json."""
import os

import pytest

from conftest import REPO, tool
from runkit.rundir import runs
from runkit.training import internals

pytestmark = pytest.mark.usefixtures("one_thread")

MLP = REPO / "configs" / "digits_mlp.gin"
QUICK = "training_loop.n_epochs=1#training_loop.loggers=[]"


def test_the_installed_versions_are_the_checked_ones():
    assert internals.unchecked("pytorch_lightning") is None
    assert internals.unchecked("lightning") is None


def test_another_version_is_named_with_the_checked_ones():
    said = internals.unchecked("lightning", {"lightning": "2.7.0", "gin-config": "0.5.0"})
    assert "checked against gin-config 0.5.0, lightning 2.6.6; this is lightning 2.7.0" in said


def test_a_run_on_the_checked_versions_records_no_warning(tmp_path, warm):
    run = tmp_path / "run"
    warm.train(run, MLP, "-b", QUICK, check=0)
    assert runs.read_json(run, runs.META)["internals_warning"] is None
    assert "warning" not in (run / runs.LOG).read_text()


def test_a_run_on_another_lightning_warns_once_in_train_log_and_meta_json(tmp_path, monkeypatch):
    """Another release, as Python's package metadata sees it: a distribution record of pytorch_lightning
    9.9.9 ahead of the installed one on the path (the code that runs is the installed 2.6.6)."""
    record = tmp_path / "site" / "pytorch_lightning-9.9.9.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text("Metadata-Version: 2.1\nName: pytorch-lightning\nVersion: 9.9.9\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "site"), os.environ["PYTHONPATH"]]))
    run = tmp_path / "run"
    tool("train", run, MLP, "-b", QUICK, check=0)
    warning = runs.read_json(run, runs.META)["internals_warning"]
    assert "this is pytorch_lightning 9.9.9" in warning and "pytorch_lightning 2.6.6" in warning
    assert (run / runs.LOG).read_text().count(f"train: warning: {warning}") == 1
