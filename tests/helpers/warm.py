"""`train` for the tests that check what a run does, forked from one warm process for the whole session.

A cold `train` spends ~5 s of CPU importing torch and Lightning before it trains a digits MLP in a fraction
of a second. runbatch's warm runs (docs/warm-runs.md) fork each `train` from a zygote that imported them
once; a forked run is, by that page, a `train` process in every way its run folder shows, and
tests/test_warm.py holds the zygote to it (a spec run warm and cold gives byte-equal history and metrics).
So the tests of results — resume equality after kills, metrics, checkpoints, loaders, the folders collect,
plot and report read — start their runs here, through the same code (runkit.sweeps.warm.Zygote). What only
a process of its own can show stays cold, with tool("train", ...): train's command line and its parsing,
exit codes and signals before the imports, what the light tools import, and the zygote's own promise.

The zygote starts at the first warm run (and again if it died) with the session's environment, one torch
thread (OMP_NUM_THREADS=1, as the one_thread fixture gives: results depend on the thread count, so a test
compares warm runs with warm runs, or with cold ones under one_thread) and tests/plugins, tests/projects,
examples/ and `code` (a session folder for code a test writes, such as a project's copy on the other
Lightning package) ahead of lib on PYTHONPATH (the callbacks and projects tests name by import path). A run whose
environment differs from that where Python reads it only at start (PYTHONPATH beyond those, other thread
counts: runkit.sweeps.warm.AT_START) is refused: such a test must start `train` cold.

The forked run is this process's child (runbatch's zygote makes its owner a child subreaper), so a test waits
for it, reads its exit status (-9 after kill -9) and kills it as runbatch kills its users' runs.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from runkit.sweeps import warm

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATHS = [os.path.join(REPO, "tests", "plugins"), os.path.join(REPO, "tests", "projects"), os.path.join(REPO, "examples")]
IMPORTS = ["kill_at", "kill_at_step"]  # tests/plugins: kill_at.py imports the unified lightning package too


class Warm:
    """The session's zygote (started lazily, restarted if it died) and the runs forked from it."""

    def __init__(self, environ):
        self.code = tempfile.mkdtemp(prefix="runkit-warm-code-")  # importable by every warm run, made before the zygote
        path = [*PATHS, self.code, *filter(None, environ.get("PYTHONPATH", "").split(os.pathsep))]
        self.base = {**environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(dict.fromkeys(path))}
        self.zygote, self.starts = None, 0

    def start(self, argv, env=None):
        """Start `train ARGV...` (argv[0] is "train") forked warm: a Popen look-alike (Run)."""
        argv = [str(a) for a in argv]
        assert warm.is_train(argv), f"only train runs warm, not {argv[0]}"
        child = self._environment(env)
        outputs = [_Output(), _Output()]
        forked = self._live().popen(argv, env=child, stdout=outputs[0].writer, stderr=outputs[1].writer)
        for output in outputs:
            output.writer.close()
        assert isinstance(forked, warm.Forked), f"the zygote could not fork {argv}: it ran cold"
        return Run(forked.pid, argv, *(output.reader for output in outputs))

    def train(self, *argv, check=None, env=None, timeout=600):
        """`train ARGV...` run warm to its end: a CompletedProcess (text), as conftest.tool("train", ...)."""
        run = self.start(["train", *argv], env=env)
        out, err = run.communicate(timeout=timeout)
        done = subprocess.CompletedProcess(run.args, run.returncode, out, err)
        if check is not None:
            assert done.returncode == check, f"{run.args} exited {done.returncode} (warm)\n{out}\n{err}"
        return done

    def close(self):
        self._stop()
        shutil.rmtree(self.code, ignore_errors=True)

    def _stop(self):
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None

    def _live(self):
        if self.zygote is None or self.zygote.proc is None or self.zygote.proc.poll() is not None:
            self._stop()
            self.zygote = warm.Zygote(self.base, IMPORTS)
            self.starts += 1
        return self.zygote

    def _environment(self, env):
        """The run's environment: the test's, with the zygote's PYTHONPATH and thread count; AssertionError
        where the test asks for another one of what a process reads only at start."""
        child = {**os.environ, **(env or {})}
        given = set(filter(None, child.get("PYTHONPATH", "").split(os.pathsep)))
        extra = given - set(self.base["PYTHONPATH"].split(os.pathsep))
        assert not extra, f"PYTHONPATH {sorted(extra)} cannot reach a warm run: start this train cold"
        child["PYTHONPATH"] = self.base["PYTHONPATH"]
        child.setdefault("OMP_NUM_THREADS", self.base["OMP_NUM_THREADS"])
        differ = sorted(k for k in {*child, *self.base} if warm.AT_START.match(k) and child.get(k) != self.base.get(k))
        assert not differ, f"{differ} differ from the warm process's, which read them at its start: start this train cold"
        return child


class _Output:
    """A file the run appends its stdout or stderr to, read by the test from its own offset (nothing to drain
    while it runs, unlike a pipe); unlinked at once, gone when both ends are closed."""

    def __init__(self):
        fd, path = tempfile.mkstemp(prefix="runkit-warm-")
        os.close(fd)
        self.writer = open(path, "ab")
        self.reader = open(path, encoding="utf-8", errors="replace")
        os.unlink(path)


class Run:
    """A warm run, shaped as the subprocess.Popen the tests use (text stdout and stderr)."""

    def __init__(self, pid, args, stdout, stderr):
        self.pid, self.args, self.stdout, self.stderr, self.returncode = pid, args, stdout, stderr, None

    def poll(self):
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # not reparented to us yet: still running as far as we can tell
                return None
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.01)
        return self.returncode

    def communicate(self, timeout=None):
        self.wait(timeout)
        out, err = self.stdout.read(), self.stderr.read()
        self.stdout.close()
        self.stderr.close()
        return out, err

    def send_signal(self, signum):
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)
