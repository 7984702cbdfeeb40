"""runbatch's two stops (docs: "a second Ctrl-C kills them"): the first SIGINT or SIGTERM passes one SIGTERM
on to the running jobs, so a `train` run checkpoints and stops; a job that ignores SIGTERM runs on until the
second, which SIGKILLs it and what it started. Real jobs: `train` on digits and a Python job that only SIGKILL ends; every
process the batch started (runbatch's environment carries a mark they all inherit) is gone at the end."""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid

import pytest

from conftest import REPO
from helpers.kills import alive
from helpers.waiting import wait_for
from runkit.rundir import runs
from runkit.training import checkpoint_io

pytestmark = pytest.mark.usefixtures("one_thread")

STUBBORN = """\
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, lambda *_: print("got TERM", flush=True))  # only SIGKILL ends it
child = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
subprocess.Popen([sys.executable, "-c", child])  # and it started a process that SIGTERM does not end either
print("started", os.getpid(), flush=True)
while True:
    time.sleep(1)
"""
TRAIN = ["train", "{run}", str(REPO / "configs" / "digits_mlp.gin"), "-b",
         "training_loop.n_epochs=10000#training_loop.loggers=[]"]


def marked(mark):
    """The live processes whose environment holds `mark`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mark.encode() in f.read() and alive(pid):
                    found.append(int(pid))
        except OSError:  # gone, or not ours
            pass
    return found


def text(path):
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("first, second", [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT)])
def test_the_first_stop_terms_the_jobs_and_the_second_kills_them(results_dir, first, second):
    stubborn, trained = results_dir / "stubborn", results_dir / "train"
    specs = [{"name": "stubborn", "run_dir": str(stubborn), "argv": [sys.executable, "-c", STUBBORN]},
             {"name": "train", "run_dir": str(trained), "argv": [a.format(run=trained) for a in TRAIN]},
             {"name": "later", "run_dir": str(results_dir / "later"), "argv": ["true"]}]
    token = uuid.uuid4().hex
    mark = f"RUNKIT_STOP_TEST={token}"
    proc = subprocess.Popen(["runbatch", "-j", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, RUNKIT_STOP_TEST=token))
    lines = queue.SimpleQueue()
    threading.Thread(target=lambda: [lines.put(json.loads(line)) for line in proc.stdout], daemon=True).start()
    try:
        proc.stdin.write("".join(json.dumps(s) + "\n" for s in specs))
        proc.stdin.close()
        wait_for(lambda: "started" in text(stubborn / runs.STDOUT) and (trained / runs.HISTORY).exists(),
                   "both jobs to be running, train past its first epoch")
        proc.send_signal(first)
        out = {o["name"]: o for o in (lines.get(timeout=120) for _ in range(2))}  # train's and later's
        assert (out["train"]["status"], out["train"]["exit_code"], out["train"]["signal"]) == ("stopped", 143, "SIGTERM")
        assert runs.status(trained) == "stopped" and checkpoint_io.checkpoint_step(trained) > 0
        assert (out["later"]["status"], out["later"]["reason"]) == ("skipped", "interrupted")
        wait_for(lambda: "got TERM" in text(stubborn / runs.STDOUT), "the stubborn job's SIGTERM")
        pid = int(text(stubborn / runs.STDOUT).split()[1])
        assert alive(pid) and proc.poll() is None  # one SIGTERM only: it runs on, and runbatch waits for it
        proc.send_signal(second)
        killed = lines.get(timeout=120)
        assert proc.wait(timeout=120) == 1 and proc.stderr.read().startswith("runbatch: interrupted")
    finally:
        left = marked(mark)
        for pid in left:  # a test that failed leaves nothing running either
            os.kill(pid, signal.SIGKILL)
        proc.kill()
    assert (killed["name"], killed["status"], killed["exit_code"], killed["signal"]) == (
        "stubborn", "killed", 137, "SIGKILL")
    assert runs.status(stubborn) == "failed" and not alive(pid)
    assert text(stubborn / runs.STDOUT).count("got TERM") == 1
    assert left == []  # nothing the batch started is left: no job, no warm process
