"""A run's lock: who owns a run folder, decided in one place.

The owner holds an exclusive flock on RUN_DIR/.lock, which dies with its process (kill -9 included), and
the file names the owner's host and pid, so that other machines know to trust the heartbeat instead. A
process owns a run in one of three ways (Lock.take): it claims the lock itself; a runner claimed it and
handed the fd over (RUNKIT_LOCK_FD, inherited); or, for the processes that srun starts, the SLURM task
that launched them holds it (RUNKIT_LOCK_OWNER names it: trusted). docs/protocol.md has the variables.
A status probe (is_locked) holds a shared lock for an instant: meeting one, a claim tries again.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import tempfile
import time

from runkit.errors import BadInput

Folder = str | os.PathLike[str]  # a run folder, as a path or a pathlib.Path

FILE = ".lock"
HOST = socket.gethostname()
PROBE_RETRIES = 2500   # a claim that meets a status probe's instant shared lock tries again (~5 s at most)
_held: set[int] = set()  # the fds of the locks this process holds: a forked child closes its copies


class NoLocks(BadInput):
    """The file system cannot lock files (Lustre without -o flock): no runner can own a run there."""


class Lock:
    """The run's lock as this process holds it; `fd` is None when the launcher holds it for us."""

    def __init__(self, run_dir: Folder, fd: int | None, how: str) -> None:
        self.run_dir, self.fd, self.how = run_dir, fd, how  # how: claimed | inherited | launcher
        if fd is not None:
            _held.add(fd)

    @classmethod
    def claim(cls, run_dir: Folder) -> Lock | None:
        """Take the lock without waiting; None if another live process holds it."""
        fd = try_lock(run_dir)
        return None if fd is None else cls(run_dir, fd, "claimed")

    @classmethod
    def take(cls, run_dir: Folder) -> Lock | None:
        """train's lock: inherited from the runner that started it, the launcher's under srun, or claimed
        here; None if another process holds it."""
        if os.path.isdir(run_dir):
            fd = inherited(run_dir)
            if fd is not None:
                return cls(run_dir, fd, "inherited")
            if held_by_launcher(run_dir):
                return cls(run_dir, None, "launcher")
        return cls.claim(run_dir)

    def release(self) -> None:
        """Give back a lock this process claimed (an inherited one stays with the runner that passed it)."""
        if self.fd is not None:
            _held.discard(self.fd)
            if self.how == "claimed":
                os.close(self.fd)
            self.fd = None


def _forget_in_child() -> None:
    """In every child forked without exec (a DataLoader worker of any loader, a user's own process): close its
    copies of the lock fds, so that only the process that took a lock holds it, and a child outliving a
    killed run can never keep it 'held by another process'. (An fd is close-on-exec already; a runner hands
    one over on purpose through Popen's pass_fds, whose fork runs no Python.)"""
    for fd in list(_held):
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def held_elsewhere(run_dir: Folder) -> bool:
    """True if a live process other than this one's runner or launcher holds the run's lock."""
    return (os.path.exists(_file(run_dir)) and inherited(run_dir) is None and is_locked(run_dir)
            and not held_by_launcher(run_dir))


def _file(run_dir: Folder) -> str:
    return os.path.join(run_dir, FILE)


def try_lock(run_dir: Folder) -> int | None:
    """Take the run's exclusive lock without waiting: an open fd that holds it, or None if another holds it."""
    os.makedirs(run_dir, exist_ok=True)
    fd = os.open(_file(run_dir), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for _ in range(PROBE_RETRIES):
            if _flock(fd, fcntl.LOCK_EX, run_dir):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{HOST} {os.getpid()}\n".encode(), 0)
                return fd
            if is_locked(run_dir):  # an owner, not a probe, holds it
                break
            time.sleep(0.002)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def check_locks(folder: Folder) -> None:
    """NoLocks if files in folder (or the nearest folder above it that exists) cannot be locked; writes nothing."""
    folder = os.path.abspath(folder)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        probe = tempfile.TemporaryFile(dir=folder)  # nameless (or unlinked at once): nothing is left behind
    except OSError:
        return  # not writable: each run says so when it starts
    with probe:
        _flock(probe.fileno(), fcntl.LOCK_EX, folder)


def _flock(fd: int, operation: int, where: Folder) -> bool:
    """flock without waiting: True if taken, False if held; NoLocks where the file system has no locks."""
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL):
            raise NoLocks(f"cannot lock files in {where} "
                          f"(flock: {e.strerror}): put the runs on a file system with locks "
                          "(Lustre: mount with -o flock)") from None
        raise


def inherited(run_dir: Folder) -> int | None:
    """The fd named by RUNKIT_LOCK_FD if it is this run's lock file, else None."""
    fd = os.environ.get("RUNKIT_LOCK_FD")
    if not fd or not fd.isdigit():
        return None
    try:
        held, wanted = os.fstat(int(fd)), os.stat(_file(run_dir))
    except OSError:
        return None
    return int(fd) if (held.st_dev, held.st_ino) == (wanted.st_dev, wanted.st_ino) else None


def owner(run_dir: Folder) -> str:
    """What the lock file says of its last taker: "HOST PID", or "" if nothing."""
    try:
        with open(_file(run_dir), "rb") as f:
            return f.read(300).decode(errors="replace").strip()
    except OSError:
        return ""


def host(run_dir: Folder) -> str | None:
    """The host whose process last took the run's lock, or None (never locked)."""
    return owner(run_dir).split(" ")[0] or None


def held_by_launcher(run_dir: Folder) -> bool:
    """True if the launcher that started this process (runkit.sweeps.slurm.task before srun) holds the run's
    lock: RUNKIT_LOCK_OWNER names the lock's live owner on this host."""
    named = os.environ.get("RUNKIT_LOCK_OWNER") or ""
    return bool(named) and named.split(" ")[0] == HOST and owner(run_dir) == named and is_locked(run_dir)


def is_locked(run_dir: Folder) -> bool:
    """True if a live process holds the run's lock.

    The probe takes a shared lock for an instant, never the exclusive one: a claim that meets it sees the
    probe (its own shared lock would succeed) and tries again, so probing never makes a claim fail.
    """
    try:
        fd = os.open(_file(run_dir), os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        return not _flock(fd, fcntl.LOCK_SH, run_dir)
    finally:
        os.close(fd)  # releases the shared lock
