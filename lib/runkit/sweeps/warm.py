"""runbatch's side of warm runs (docs/warm-runs.md): one zygote per local batch (runkit.training.zygote), and
a Popen look-alike for the `train` runs forked from it. Light: no torch here.

A run goes warm when its argv is `train ...` (or this checkout's tools/train), its environment matches the
zygote's where a process reads it at start (PYTHON*, LD_*, thread counts), and the modules its configs
`import` loaded in the zygote; any other runs cold, as do all on a host that is not Linux. The forked run is
made this process's own child (PR_SET_CHILD_SUBREAPER): runbatch waits for it, signals it and reads its exit
status exactly as for a process it started itself. A zygote that dies is restarted once; after a second
death, the rest run cold. runbatch says either on stderr.
"""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from runkit import cli
from runkit.rundir import hash_seed

TRAIN_TOOL = cli.tool_path("train")
IMPORT = re.compile(r"^\s*import\s+([A-Za-z_][\w.]*)", re.M)
AT_START = re.compile(r"^(PYTHON|LD_|OMP_|MKL_|OPENBLAS_)")  # read once, when a process starts or imports
RESTARTS = 1


class Died(Exception):
    """The zygote is gone (killed, crashed, or never got ready)."""


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


def is_train(argv: Sequence[str]) -> bool:
    return bool(argv) and (argv[0] == "train" or os.path.realpath(argv[0]) == os.path.realpath(TRAIN_TOOL))


def config_imports(argv: Sequence[str], cwd: str | None = None) -> list[str]:
    """The modules the argv's config files `import` (files a config includes are not followed)."""
    names = []
    for i, word in enumerate(argv[1:], 1):
        if word.endswith(".gin") and argv[i - 1] not in ("-b", "--bind"):
            try:
                with open(os.path.join(cwd or os.getcwd(), word), encoding="utf-8") as f:
                    names += IMPORT.findall(f.read())
            except OSError:
                pass  # train says so, cold or warm
    return names


class Zygote:
    """The batch's warm process. popen() has subprocess.Popen's shape, for lifecycle.Run.start(launch=...)."""

    def __init__(self, env: Mapping[str, str], imports: Iterable[str]) -> None:
        self.base = dict(env)  # what a run gets without a spec's env
        self.env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [cli.LIB, env.get("PYTHONPATH")]))}
        self.imports = sorted(set(imports))
        self.failed: dict[str, str] = {}
        self.deaths = 0
        self.proc: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self._lock, self._send = threading.Lock(), threading.Lock()
        self._ready = threading.Event()
        self._told: set[str] = set()
        # PR_SET_PDEATHSIG kills the zygote when the *thread* that started it ends: one thread starts them all
        self._starts: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._keeper, daemon=True, name="zygote").start()
        _become_subreaper()
        self._restart()

    def takes(self, argv: Sequence[str], env: Mapping[str, str]) -> bool:
        """True if this run can go warm; False (said once per reason) if it must start cold."""
        if not is_train(argv):
            return False
        if _at_start(env) != _at_start(self.base):
            self._tell("env", "runs whose environment differs where Python reads it at start (PYTHON*, LD_*, "
                              "thread counts) start cold")
            return False
        self._ready.wait()
        if self.proc is None:
            return False
        bad = [name for name in config_imports(argv) if name in self.failed]
        for name in bad:
            self._tell(name, f"runs whose config imports {name} start cold: in the warm process it failed "
                             f"({self.failed[name]})")
        return not bad

    def popen(self, argv: list[str], stdin: Any = None, env: Mapping[str, str] | None = None,
              pass_fds: Sequence[int] = (), stdout: Any = None, stderr: Any = None,
              start_new_session: bool = True) -> Forked | subprocess.Popen:
        """Fork the run from the zygote: a Forked; a Popen (cold) if the zygote cannot fork it or is gone."""
        del stdin, start_new_session  # always /dev/null and a new session, as runbatch starts cold runs
        request = {"argv": list(argv), "env": dict(env if env is not None else os.environ), "cwd": os.getcwd(), "pass_fds": list(pass_fds)}
        while True:
            generation = self.proc
            forked: Forked | Literal[False] | None  # None: start it cold; False: the zygote restarted, try again
            try:
                forked = self._fork(request, [stdout.fileno(), stderr.fileno(), *pass_fds])
            except Died:
                self._died(generation)
                forked = None if self.proc is None else False
            if forked is None:
                return subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env, pass_fds=pass_fds,
                                        stdout=stdout, stderr=stderr, start_new_session=True)
            if forked:
                return forked

    def close(self) -> None:
        """End the zygote (it exits when its socket closes) and wait for it."""
        with self._lock:
            self._ready.wait()
            proc, self.proc = self.proc, None
            if self.control:
                try:  # the zygote sees its end close even where a fork of this process holds a copy of ours
                    self.control.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.control.close()
        if proc:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._starts.put(None)

    # ---- inside -------------------------------------------------------------------------------------

    def _fork(self, request: dict[str, Any], fds: list[int]) -> Forked | None:
        self._ready.wait()
        if self.proc is None or self.control is None:
            raise Died()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            try:
                with self._send:
                    socket.send_fds(self.control, [json.dumps(request).encode()], [theirs.fileno(), *fds])
            except OSError:
                raise Died() from None
            theirs.close()
            answer = _receive(ours)
            if answer is None:
                raise Died()
            if "error" in answer:
                cli.say(f"the warm process could not fork ({answer['error']}): that run starts cold")
                return None
            adopted = _receive(ours)  # None: the zygote died after the fork; the run lives on, ours anyway
            return Forked(answer["pid"], adopted is not None)
        finally:
            ours.close()
            theirs.close()

    def _died(self, generation: subprocess.Popen | None) -> None:
        with self._lock:
            if generation is not self.proc or self.proc is None:
                return  # another worker saw it first
            code = self.proc.poll()
            how = "is gone" if code is None else f"died ({'signal ' + str(-code) if code < 0 else 'exit ' + str(code)})"
            self.deaths += 1
            if self.deaths > RESTARTS:
                cli.say(f"the warm process (pid {self.proc.pid}) {how} again: the remaining runs start cold")
                self.proc = None
                return
            cli.say(f"the warm process (pid {self.proc.pid}) {how}: restarting it")
            self._restart()
            self._ready.wait()

    def _restart(self) -> None:
        self._ready.clear()
        self._starts.put(True)

    def _keeper(self) -> None:
        while self._starts.get():
            self._start()

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**self.env, "RUNKIT_ZYGOTE_FD": str(theirs.fileno()), "RUNKIT_ZYGOTE_IMPORTS": json.dumps(self.imports),
               "PYTHONHASHSEED": str(hash_seed.default(self.env))}  # a new run's: its forks share it
        try:
            proc = subprocess.Popen([sys.executable, "-m", "runkit.training.zygote"], env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), start_new_session=True)
        except OSError as e:
            cli.say(f"cannot start the warm process ({e.strerror}): the runs start cold")
            self.proc = None
            self._ready.set()
            return
        finally:
            theirs.close()
        ready = _receive(ours)
        if ready is None:
            proc.wait()
            cli.say(f"the warm process exited with {proc.returncode} while importing: the runs start cold "
                     "(see the lines above)")
            self.proc = None
        else:
            self.proc, self.control, self.failed = proc, ours, ready["failed"]
        self._ready.set()

    def _tell(self, key: str, text: str) -> None:
        if key not in self._told:
            self._told.add(key)
            cli.say(text)


class Forked:
    """A run forked from the zygote and adopted by this process: the part of Popen the executor uses."""

    def __init__(self, pid: int, adopted: bool) -> None:
        self.pid, self._adopted = pid, adopted
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self) -> int:
        """The exit status as Popen gives it (-N: killed by signal N)."""
        waited = 0.0
        while self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:  # not reparented yet (the zygote died before saying it was)
                if waited > 30:
                    raise
                time.sleep(0.05)
                waited += 0.05
                continue
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def _at_start(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if AT_START.match(k)}


def _receive(sock: socket.socket) -> dict[str, Any] | None:
    try:
        data = sock.recv(1 << 16)
    except OSError:
        return None
    return json.loads(data) if data else None


def _become_subreaper() -> None:
    """Orphans of this process's descendants become its children: so the runs the zygote forks are ours."""
    import ctypes
    if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
