"""train --from: a run that starts from another run's checkpoint, with its own bindings and folder, resumes
exactly from its own checkpoints after kill -9, and says where it came from (meta.json, collect)."""
import csv
import io

import pytest

from conftest import REPO, tool, without_time
from helpers.kills import assert_killed, kill_callback, resume_point
from runkit.rundir import runs
from runkit.training import checkpoint_io

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

MLP = REPO / "configs" / "digits_mlp.gin"
SOURCE = "training_loop.n_epochs=2#training_loop.loggers=[]#training_loop.checkpoint_every_n_steps=10"
STEPS_PER_EPOCH = 45  # digits_mlp.gin: 1437 training images in batches of 32


@pytest.fixture(scope="module")
def source(tmp_path_factory, warm):
    """A finished 2-epoch run to start from: its best.ckpt is epoch 2's."""
    run = tmp_path_factory.mktemp("source") / "pretrained"
    warm.train(run, MLP, "-b", SOURCE, check=0)
    return run


@pytest.mark.slow
def test_a_fine_tune_with_another_rate_killed_mid_epoch_resumes_equal_to_its_twin(tmp_path, monkeypatch, source, warm):
    """From the source's best.ckpt with a tenth of its rate: the twin trains straight through; the other is
    SIGKILLed 3 steps after its checkpoint at step 10 (mid-epoch 1), and its rerun resumes from its own
    checkpoint (not the source) and ends with the twin's history and metrics."""
    config = kill_callback(tmp_path, monkeypatch)
    bindings = "training_loop.n_epochs=2#optimizer.lr=0.01#training_loop.checkpoint_every_n_steps=10#mlp.dropout=0.1"
    argv = lambda run: ["train", run, MLP, config, "-b", bindings, "--from", source]  # noqa: E731
    twin = tmp_path / "twin"
    warm.train(*argv(twin)[1:], check=0)
    run = tmp_path / "interrupted"
    monkeypatch.setenv("KILL_AT", "13")
    err = assert_killed(warm.start(argv(run)))
    assert resume_point(err) is None and "starting from" in err
    assert checkpoint_io.checkpoint_step(run) == 10 and runs.read_history(run) == []
    monkeypatch.delenv("KILL_AT")
    rerun = warm.train(*argv(run)[1:], check=0)
    assert resume_point(rerun.stderr) == (1, 10) and "starting from" not in rerun.stderr
    history = runs.read_history(run)
    assert without_time(history) == without_time(runs.read_history(twin))
    assert [row["lr"] for row in history] == [0.01, 0.01]
    final, expected = (runs.read_json(r, runs.METRICS) for r in (run, twin))
    assert without_time([final["best"], final["final"]]) == without_time([expected["best"], expected["final"]])

    recorded = runs.read_json(run, runs.META)["source"]
    best = source / runs.CHECKPOINTS / "best.ckpt"
    assert recorded["run_dir"] == str(source) and recorded["checkpoint"] == str(best)
    assert recorded["sha256"] == (source / runs.CHECKPOINTS / "best.ckpt.sha256").read_text().split()[0]
    assert recorded["bindings"] == runs.read_json(source, runs.BINDINGS) and recorded["state"] is False
    table = tool("collect", tmp_path, source.parent, check=0).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert {row["name"]: row["from"] for row in rows} == {"twin": str(best), "interrupted": str(best),
                                                           "pretrained": ""}
    page = tmp_path / "page.html"
    tool("report", "-o", page, input=tool("collect", tmp_path, check=0).stdout, check=0)  # both from one source
    assert str(best) in page.read_text()
    refused = warm.train(run, MLP, config, "-b", bindings, check=2)  # the same run without its --from
    assert refused.stderr.count("\n") == 1 and "started with --from" in refused.stderr


def test_the_weights_and_with_from_state_the_schedule_come_from_the_source(tmp_path, source, warm):
    """At rate 0 the fine-tune's first epoch scores exactly what the source's best.ckpt scored; with
    --from-state the warm-up schedule continues from the source's 90 steps (past warm-up: the full rate)
    where a plain --from starts it over (46/100 of the rate after epoch 1's 45 steps)."""
    frozen = tmp_path / "frozen"
    warm.train(frozen, MLP, "-b", "training_loop.n_epochs=1#optimizer.lr=0.0#training_loop.loggers=[]",
         "--from", source, check=0)
    best = runs.read_json(source, runs.METRICS)["best"]
    assert best["epoch"] == 2 and runs.read_history(frozen)[0]["val_acc"] == best["val_acc"]
    warmup = "training_loop.n_epochs=1#optimizer.lr=0.01#lr_schedule.warmup_steps=100#training_loop.loggers=[]"
    for name, flags, rate in [("plain", [], 0.01 * 46 / 100), ("state", ["--from-state"], 0.01)]:
        warm.train(tmp_path / name, MLP, "-b", warmup, "--from", source, *flags, check=0)
        assert runs.read_history(tmp_path / name)[0]["lr"] == pytest.approx(rate), name
    assert runs.read_json(tmp_path / "state", runs.META)["source"]["state"] is True


@pytest.mark.parametrize("problem", ["mismatch", "damaged", "missing"])
def test_a_source_that_cannot_be_started_from_is_exit_2_and_nothing_is_written(tmp_path, source, problem, warm):
    """A model of another shape names the first key that does not fit; a source whose digest does not match
    its bytes, or that does not exist, is refused: one line, exit 2, no run folder."""
    origin, bindings = source, "training_loop.loggers=[]"
    if problem == "mismatch":
        bindings += "#mlp.hidden=[32]"
    elif problem == "damaged":
        origin = tmp_path / "damaged.ckpt"
        data = bytearray((source / runs.CHECKPOINTS / "best.ckpt").read_bytes())
        data[len(data) // 2] ^= 0xFF
        origin.write_bytes(bytes(data))
        (tmp_path / "damaged.ckpt.sha256").write_text(
            (source / runs.CHECKPOINTS / "best.ckpt.sha256").read_text().replace("best.ckpt", "damaged.ckpt"))
    else:
        origin = tmp_path / "nowhere"
    run = tmp_path / "run"
    argv = [run, MLP, "-b", bindings, "--from", origin]
    refused = warm.train(*argv, check=2)
    message = {"mismatch": "net.net.1.weight has shape [64, 64] in the source, [32, 64] here",
               "damaged": "is not sound (its bytes do not match damaged.ckpt.sha256",
               "missing": "does not exist"}[problem]
    assert refused.stderr.count("\n") == 1 and message in refused.stderr, refused.stderr
    assert not run.exists() and refused.stdout == ""

