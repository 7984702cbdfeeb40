"""Keep a destination folder (local, or `host:path` over ssh) in step with a source tree, through rsync.

Never sent, and never deleted on the destination: `.git`, the venv, `results/` and `data/` (and RESULTS_DIR /
DATA_DIR when they lie inside the source), and whatever `.gitignore` and `.syncignore` files ignore (read by
rsync itself, nested ones too). rsync never deletes a path on the receiver that an exclude rule matches, so
experiment outputs on the far side survive every sync.
"""
import itertools
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from runkit.cli import UsageError, WorkFailed

# rsync exit codes that mean "the remote or the link may come back": socket I/O, protocol stream, timeouts, ssh.
TRANSIENT_EXITS = {10, 12, 30, 35, 255}
VANISHED_EXIT = 24  # a file vanished while rsync read it: an edit in progress, the next sync catches up
MAX_BACKOFF_S = 60
ALWAYS_EXCLUDED = [".git", "/.venv", "/results", "/data"]
IGNORE_FILES = [".gitignore", ".syncignore"]
_ITEM = re.compile(r"^(\*deleting|[<>ch.][fdLDS])")


@dataclass(frozen=True)
class Destination:
    """Where to sync to: a local folder (host None) or a path on a host reached over ssh."""
    host: str | None
    path: str

    def __str__(self):
        return f"{self.host}:{self.path}" if self.host else self.path

    def rsync_arg(self):
        """The destination as rsync's last argument; the trailing slash syncs into the folder itself."""
        return f"{self}/"


@dataclass(frozen=True)
class Plan:
    """Everything one rsync run needs; the same plan is replayed after every batch of changes."""
    src: str
    dest: Destination
    rsh: str
    excluded: tuple

    def rsync_argv(self, dry_run=False):
        argv = ["rsync", "--recursive", "--links", "--perms", "--times", "--itemize-changes",
                # after the transfer, so the receiver judges deletions with the new .gitignore files
                "--delete-after", "--timeout=60"]
        if self.dest.host:
            argv += ["--compress", "--rsh", self.rsh]
        if dry_run:
            argv.append("--dry-run")
        argv += [f"--filter=- {pattern}" for pattern in self.excluded]
        argv += [f"--filter=:- {name}" for name in IGNORE_FILES]
        return argv + [self.src + "/", self.dest.rsync_arg()]


def parse_destination(text):
    """`host:path` (a colon before any slash, as rsync reads it) or a local path; refuse home and root."""
    if text.startswith("rsync://") or "::" in text.split("/")[0]:
        raise UsageError(f"DEST {text} names an rsync daemon, which sync does not use; write host:path (ssh)")
    colon, slash = text.find(":"), text.find("/")
    if colon > 0 and (slash < 0 or colon < slash):
        host, path = text[:colon], text[colon + 1:].rstrip("/")
        if path in ("", "~", ".", "/"):
            raise UsageError(f"DEST {text} is a whole home or root folder, and sync deletes what is not in SRC "
                             f"there; name a folder for the project, e.g. {host}:~/proj")
        return Destination(host, path)
    path = os.path.abspath(os.path.expanduser(text))
    if path in (os.path.expanduser("~"), "/"):
        raise UsageError(f"DEST {text} is a whole home or root folder, and sync deletes what is not in SRC "
                         "there; name a folder for the project")
    return Destination(None, path)


def make_plan(src, dest_text, rsh=None):
    """Check SRC and DEST against each other and the tools on PATH; a problem is a UsageError (exit 2)."""
    if not os.path.isdir(src):
        raise UsageError(f"SRC {src} is not a folder; give the project folder to sync from")
    excluded = tuple(excluded_patterns(src))
    src = os.path.realpath(src)
    dest = parse_destination(dest_text)
    require_program("rsync", "apt-get install rsync")
    rsh = rsh or os.environ.get("RSYNC_RSH") or "ssh"
    if dest.host:
        rsh = batch_mode(rsh)
        require_program(shlex.split(rsh)[0], "apt-get install openssh-client, or fix --rsh")
    else:
        check_local_dest(src, dest.path)
    return Plan(src, dest, rsh, excluded)


def require_program(name, fix):
    if not shutil.which(name):
        raise UsageError(f"{name} is not installed or not on PATH; {fix}")


def batch_mode(rsh):
    """Make ssh fail at once instead of prompting for a password or host key; the user's -o options win."""
    words = shlex.split(rsh)
    if not words:
        raise UsageError("--rsh is empty; give a command such as 'ssh -p 2222'")
    if os.path.basename(words[0]) != "ssh":
        return rsh
    return shlex.join(words + ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15"])


def check_local_dest(src, dest):
    real = os.path.realpath(dest)
    if real == src or real.startswith(src + os.sep) or src.startswith(real + os.sep):
        raise UsageError(f"DEST {dest} overlaps SRC {src}; sync to a folder outside the source tree")
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise UsageError(f"DEST {dest} exists and is not a folder; name a folder")
    if not os.path.isdir(os.path.dirname(real)):
        raise UsageError(f"DEST's parent folder {os.path.dirname(real)} does not exist; create it first")


def excluded_patterns(src):
    """The fixed exclusions, plus RESULTS_DIR, DATA_DIR and the active venv when they lie inside SRC.

    Compared both as written and with symlinks resolved: `runs -> /scratch/runs` inside SRC is still excluded.
    """
    patterns = list(ALWAYS_EXCLUDED)
    for var in ("RESULTS_DIR", "DATA_DIR", "VIRTUAL_ENV"):
        value = os.environ.get(var)
        for path, root in [(os.path.abspath(value), os.path.abspath(src)),
                           (os.path.realpath(value), os.path.realpath(src))] if value else []:
            inside = os.path.relpath(path, root)
            pattern = "/" + inside.replace(os.sep, "/")
            if inside != "." and not inside.startswith("..") and pattern not in patterns:
                patterns.append(pattern)
    return patterns


def check_reachable(plan):
    """Before the first sync: log in to the host once, and check rsync and DEST's parent folder there."""
    if not plan.dest.host:
        return
    parent = posixpath.dirname(plan.dest.path) or "."
    probe = f"command -v rsync >/dev/null || exit 127; cd {_remote_quote(parent)} || exit 3"
    argv = shlex.split(plan.rsh) + [plan.dest.host, probe]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UsageError(f"DEST host {plan.dest.host} did not answer within 60 s; check the host name") from None
    host = plan.dest.host
    if proc.returncode == 127:
        raise UsageError(f"rsync is not installed on {host}; install it there")
    if proc.returncode == 3:
        raise UsageError(f"{host} has no folder {parent}; create it first (ssh {host} mkdir -p {parent})")
    if proc.returncode != 0:
        raise UsageError(f"cannot reach {host} ({_last_line(proc.stderr)}); check that "
                         f"`{plan.rsh} {host} true` works without a password")


def _remote_quote(path):
    """Quote a path for the remote shell, leaving a leading ~ for it to expand."""
    if path == "~" or path.startswith("~/"):
        return "~/" + shlex.quote(path[2:]) if len(path) > 2 else "~"
    return shlex.quote(path)


def sync_once(plan, dry_run=False, attempts=3):
    """One rsync of the whole tree, retried with backoff while the remote looks temporarily away.

    Logs one line on stderr: how many files changed and how long it took. A dry run lists rsync's itemized
    changes on stdout. A failure that retrying does not cure (or `attempts` of them) raises WorkFailed.
    """
    delay = 1
    for attempt in itertools.count(1):
        start = time.monotonic()
        proc = subprocess.run(plan.rsync_argv(dry_run), capture_output=True, text=True, stdin=subprocess.DEVNULL)
        took = time.monotonic() - start
        if proc.returncode in (0, VANISHED_EXIT):
            items = [line for line in proc.stdout.splitlines() if _ITEM.match(line)]
            if dry_run:
                sys.stdout.write("".join(line + "\n" for line in items))
            changed = sum(1 for line in items if not _is_folder(line))
            what = f"{changed} file{'' if changed == 1 else 's'}"
            verb = "would change (dry run)" if dry_run else "synced"
            _log(f"{what} {verb} to {plan.dest} in {took:.2f} s")
            return
        reason = f"rsync exit {proc.returncode}: {_rsync_error(proc.stderr)}"
        if proc.returncode not in TRANSIENT_EXITS or (attempts is not None and attempt >= attempts):
            raise WorkFailed(f"sync to {plan.dest} failed ({reason})")
        _log(f"{plan.dest} unreachable ({reason}); retrying in {delay} s")
        time.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)


def _log(message):
    sys.stdout.flush()
    print(f"sync: {message}", file=sys.stderr, flush=True)


def _is_folder(item):
    """Folders are not counted: creating or deleting one follows from its files."""
    if item.startswith("*deleting"):
        return item.endswith("/")
    return item[1] == "d"


def _rsync_error(stderr):
    """rsync's first specific complaint (the `rsync: ...` line), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    specific = [line for line in lines if line.startswith(("rsync:", "ssh:")) or "Connection" in line]
    return (specific or lines or ["no message"])[0]


def _last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def watch(plan, settle, attempts=3):
    """Sync everything, then again after each burst of changes, until interrupted (KeyboardInterrupt).

    Later syncs retry a remote that is away without limit; one that fails otherwise (a full disk, an
    unreadable file) is reported and tried again after the next change.
    """
    from runkit.watch import Watcher
    watcher = Watcher(plan.src, plan.excluded)
    check_reachable(plan)
    sync_once(plan, attempts=attempts)
    for _ in watcher.batches(settle):
        try:
            sync_once(plan, attempts=None)
        except WorkFailed as e:
            _log(f"{e}; trying again after the next change")
