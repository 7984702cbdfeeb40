"""Keep a destination folder (local, or `host:path` over ssh) in step with a source tree, through rsync.

Never sent: `.git`, the venv, `results/` and `data/` (and RESULTS_DIR / DATA_DIR when they lie inside the
source), and whatever `.gitignore` and `.syncignore` files ignore (read by rsync itself, nested ones too).

Never deleted: anything sync did not send. DEST keeps a record (RECORD) of the paths sync sent there; a
sync deletes on DEST only recorded paths that SRC no longer has, one by one (`rm -f`, `rmdir`: never a
whole tree), so files made on the far side (run outputs, a `slurm-*.out`, a `wandb/` folder) survive every
sync, whatever the ignore files say. rsync's own --delete cannot be used: it deletes whatever SRC lacks.
"""
import itertools
import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from runkit.errors import BadInput, WorkFailed

# rsync exit codes that mean "the remote or the link may come back": socket I/O, protocol stream, timeouts, ssh.
TRANSIENT_EXITS = {10, 12, 30, 35, 255}
VANISHED_EXIT = 24  # a file vanished while rsync read it: an edit in progress, the next sync catches up
MAX_BACKOFF_S = 60
RECORD = ".runkit-sync.json"  # on DEST: what sync sent there, the only paths it may delete
ALWAYS_EXCLUDED = [".git", "/.venv", "/results", "/data", "/" + RECORD]
IGNORE_FILES = [".gitignore", ".syncignore"]
_ITEM = re.compile(r"^([<>ch.][fdLDS].{9}) (.+)$")  # `--out-format=%i %n`: the itemized change, the name
_ESCAPED = re.compile(r"\\#([0-7]{3})")  # how rsync writes a control character (a newline) in a name

# Run on DEST's host, once before the first sync: the login folder, the home folder and DEST (or its parent
# when DEST does not exist yet) with symlinks and `..` resolved, then DEST's state and its record. The exit
# status names what is wrong: 127 no rsync, 5 no home folder, 6 DEST is not a folder, 3 no parent folder.
_PROBE = """command -v rsync >/dev/null || exit 127
pwd -P && (cd -P && pwd -P) || exit 5
if cd -P -- {dest} 2>/dev/null; then
  pwd -P
  if [ -f {record} ]; then echo record; cat {record}
  elif [ -n "$(ls -A)" ]; then echo full
  else echo empty; fi
elif [ -e {dest} ] || [ -L {dest} ]; then exit 6
elif cd -P -- {parent} 2>/dev/null; then pwd -P; echo new
else exit 3; fi
"""
# Deletes the NUL-separated paths on stdin (files first, then folders deepest first), inside DEST: files
# with one rm -f (which leaves folders alone), then each folder (ending in /) with rmdir, which leaves one
# that still holds something. What cannot be deleted stays; it is not an error. (rsync's
# --delete-missing-args cannot do this: it deletes a folder with all it holds, or refuses the whole folder.)
_DELETE = ("cd -P -- {dest} || exit 3; xargs -0 sh -c 'rm -f -- \"$@\" 2>/dev/null; "
           "for p; do case $p in */) rmdir -- \"$p\" 2>/dev/null;; esac; done; exit 0' sh")


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
        """The transfer: no --delete; -ii lists every path it sent or found up to date, one per line."""
        argv = ["rsync", "--recursive", "--links", "--perms", "--times", "-ii", "--out-format=%i %n",
                "--8-bit-output", *self._link()]
        if self.dest.host:
            argv.append("--compress")
        if dry_run:
            argv.append("--dry-run")
        argv += [f"--filter=- {pattern}" for pattern in self.excluded]
        argv += [f"--filter=:- {name}" for name in IGNORE_FILES]
        return argv + [self.src + "/", self.dest.rsync_arg()]

    def record_argv(self, record_file):
        """Send the record: --ignore-times, since two records can share a size and a second."""
        return ["rsync", "--ignore-times", *self._link(), record_file, self.dest.rsync_arg()]

    def shell_argv(self, script):
        """Run a sh script where DEST is: over ssh on its host, or here."""
        if self.dest.host:
            return shlex.split(self.rsh) + [self.dest.host, script]
        return ["/bin/sh", "-c", script]

    def _link(self):
        return ["--timeout=60", "--rsh", self.rsh] if self.dest.host else ["--timeout=60"]


def parse_destination(text):
    """`host:path` (a colon before any slash, as rsync reads it) or a local path, as the user wrote it.

    A local path is made absolute but not normalized: `link/..` means what the kernel makes of it.
    """
    if text.startswith("rsync://") or "::" in text.split("/")[0]:
        raise BadInput(f"DEST {text} names an rsync daemon, which sync does not use; write host:path (ssh)")
    colon, slash = text.find(":"), text.find("/")
    if colon > 0 and (slash < 0 or colon < slash):
        host, path = text[:colon], _strip_slashes(text[colon + 1:])
        if host.startswith("-"):
            raise BadInput(f"DEST {text} names a host that begins with '-', which ssh would take for an "
                             "option; write host:path with the host's real name")
        return Destination(host, path or ".")
    return Destination(None, _strip_slashes(os.path.join(os.getcwd(), os.path.expanduser(text))))


def _strip_slashes(path):
    return path.rstrip("/") or path[:1]


def make_plan(src, dest_text, rsh=None):
    """Check SRC and DEST's name against each other and the tools on PATH; a problem is a BadInput (exit 2).

    What DEST is on its host (a home folder, a folder of other files) is open_destination's to check.
    """
    if not os.path.isdir(src):
        raise BadInput(f"SRC {src} is not a folder; give the project folder to sync from")
    dest = parse_destination(dest_text)
    excluded = tuple(excluded_patterns(src))
    src = os.path.realpath(src)
    if not dest.host:
        check_overlap(src, dest.path)
    require_program("rsync", "apt-get install rsync")
    rsh = rsh or os.environ.get("RSYNC_RSH") or "ssh"
    if dest.host:
        rsh = batch_mode(rsh)
        require_program(shlex.split(rsh)[0], "apt-get install openssh-client, or fix --rsh")
    return Plan(src, dest, rsh, excluded)


def require_program(name, fix):
    if not shutil.which(name):
        raise BadInput(f"{name} is not installed or not on PATH; {fix}")


def batch_mode(rsh):
    """Make ssh fail at once instead of prompting for a password or host key; the user's -o options win."""
    words = shlex.split(rsh)
    if not words:
        raise BadInput("--rsh is empty; give a command such as 'ssh -p 2222'")
    if os.path.basename(words[0]) != "ssh":
        return rsh
    return shlex.join(words + ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15"])


def check_overlap(src, dest):
    real = os.path.realpath(dest)
    if real == src or real.startswith(src + os.sep) or src.startswith(real + os.sep):
        raise BadInput(f"DEST {dest} overlaps SRC {src}; sync to a folder outside the source tree")


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


def open_destination(plan, force=False):
    """Before the first sync, look at DEST once (over ssh: one login) and return the paths sync sent there.

    Refuses, writing nothing: a host that does not answer or lacks rsync, a DEST whose parent is missing,
    a DEST that is a home folder, `/` or any folder above a home (after `~`, `..` and symlinks are resolved
    on DEST's host), and a DEST that holds files but no record unless `force` (it adopts the folder, and
    still deletes only what it sends).
    """
    dest, host = plan.dest, plan.dest.host
    try:
        proc = subprocess.run(plan.shell_argv(_PROBE.format(dest=_shell_quote(dest.path), record=RECORD,
                                                            parent=_shell_quote(_parent(dest.path)))),
                              check=False, capture_output=True, text=True, errors="surrogateescape", timeout=60,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BadInput(f"DEST host {host} did not answer within 60 s; check the host name") from None
    _check_probe_status(plan, proc)
    login, home, real, state, text = (proc.stdout.split("\n", 4) + [""] * 4)[:5]
    if state not in ("record", "full", "empty", "new") or not all(p.startswith("/") for p in (login, home, real)):
        raise BadInput(f"DEST {dest}: {host or 'sh'} answered with something else than paths ({_clip(login)}); "
                         "is the shell clean (no login script that prints)?")
    if state == "new":
        real = posixpath.join(real, posixpath.basename(dest.path))
    homes = [home, login] if host else [home]  # ssh starts in the home folder, which $HOME may not name
    if real == "/" or any(h == real or h.startswith(real.rstrip("/") + "/") for h in homes):
        raise BadInput(f"DEST {dest} is {real}{f' on {host}' if host else ''}, a home folder or a folder "
                         f"above one; name a folder of the project's own, e.g. {f'{host}:' if host else '~/'}proj")
    if state == "record":
        return _read_record(text, dest)
    if state == "full" and not force:
        raise BadInput(f"DEST {dest} holds files that sync did not send (it has no {RECORD}); name a new "
                         "or empty folder, or add --force to sync into it (sync deletes only what it sent)")
    return frozenset()


def _check_probe_status(plan, proc):
    host, parent = plan.dest.host, _parent(plan.dest.path)
    problems = {
        127: f"rsync is not installed on {host}; install it there",
        5: f"the home folder ($HOME) of {host or 'this user'} does not exist; set HOME",
        6: f"DEST {plan.dest} exists and is not a folder sync can enter; name a folder",
        3: f"{host} has no folder {parent}; create it first (ssh {host} mkdir -p {parent})" if host
        else f"DEST's parent folder {parent} does not exist; create it first",
    }
    if proc.returncode in problems:
        raise BadInput(problems[proc.returncode])
    if proc.returncode != 0 and host:
        raise BadInput(f"cannot reach {host} ({_last_line(proc.stderr)}); check that "
                         f"`{plan.rsh} {host} true` works without a password")
    if proc.returncode != 0:
        raise BadInput(f"cannot look into DEST {plan.dest} ({_last_line(proc.stderr)})")


def _parent(path):
    return posixpath.dirname(path) or "."


def _read_record(text, dest):
    """The record's paths; each must stay inside DEST (relative, no `..`), or the record is not sync's."""
    try:
        sent = json.loads(text)["sent"]
        valid = isinstance(sent, list) and all(isinstance(p, str) and _inside(p) for p in sent)
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise BadInput(f"{dest}/{RECORD} is not a record that sync wrote; move it away and sync with --force")
    return frozenset(sent)


def _inside(path):
    return all(part not in ("", ".", "..") for part in path.removesuffix("/").split("/"))


def _shell_quote(path):
    """Quote a path for DEST's shell, leaving a leading ~ for it to expand."""
    if path == "~" or path.startswith("~/"):
        return "~/" + shlex.quote(path[2:]) if len(path) > 2 else "~"
    return shlex.quote(path)


class _Away(Exception):
    """DEST's host or the link to it is away for now (a transient rsync or ssh exit)."""


def sync_once(plan, sent, dry_run=False, attempts=3):
    """One sync of the whole tree, retried with backoff while the remote looks temporarily away.

    `sent` is the record (what sync sent to DEST earlier); returns the new one. Logs one line on stderr: how
    many files changed and how long it took. A dry run lists the changes on stdout (rsync's itemized lines,
    and `*deleting` ones) and writes nothing. A failure that retrying does not cure (or `attempts` of them)
    raises WorkFailed.
    """
    delay = 1
    for attempt in itertools.count(1):
        start = time.monotonic()
        try:
            record, changes = _sync(plan, sent, dry_run)
        except _Away as e:
            if attempts is not None and attempt >= attempts:
                raise WorkFailed(f"sync to {plan.dest} failed ({e})") from None
            _log(f"{plan.dest} unreachable ({e}); retrying in {delay} s")
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
            continue
        if dry_run:
            sys.stdout.write("".join(line + "\n" for line in changes))
        count = sum(1 for line in changes if not line.endswith("/"))  # a folder follows from its files
        verb = "would change (dry run)" if dry_run else "synced"
        _log(f"{count} file{'' if count == 1 else 's'} {verb} to {plan.dest} in {time.monotonic() - start:.2f} s")
        return record


def _sync(plan, sent, dry_run):
    """Send, delete what sync sent that SRC lost, record. Returns the record and the changes, one line each.

    A recorded path that SRC still has but no longer sends (ignored since) leaves the record: it is DEST's now.
    """
    items = _items(_run(plan.rsync_argv(dry_run), plan.dest))
    present = {name for _, name in items}
    deleted = sorted(p for p in sent - present if not os.path.lexists(os.path.join(plan.src, p)))
    record = (sent & present) | {name for item, name in items if item[0] != "."}  # < > c: sent or made
    if not dry_run and deleted:
        _run(plan.shell_argv(_DELETE.format(dest=_shell_quote(plan.dest.path))), plan.dest,
             input="".join(p + "\0" for p in _deletion_order(deleted)))
    if not dry_run and record != sent:
        _write_record(plan, record)
    changes = [f"{item} {name}" for item, name in items if item[0] != "." or item[2:].strip()]
    return record, changes + [f"*deleting   {p}" for p in deleted]


def _items(output):
    """(itemized change, name) for every path of rsync's -ii output but DEST itself, names unescaped."""
    items = []
    for line in output.split("\n"):  # not splitlines(), which also splits at characters a name may hold
        match = _ITEM.match(line)
        if match and match[2] != "./":
            items.append((match[1], _ESCAPED.sub(lambda m: chr(int(m[1], 8)), match[2])))
    return items


def _deletion_order(paths):
    """Files first, then folders deepest first, so that a folder is empty when its turn comes (if it ever is)."""
    return [p for p in paths if not p.endswith("/")] + sorted((p for p in paths if p.endswith("/")), reverse=True)


def _write_record(plan, record):
    """Replace DEST's record through rsync, which renames a complete file into place (a kill leaves the old)."""
    with tempfile.TemporaryDirectory(prefix="runkit-sync-") as folder:
        path = os.path.join(folder, RECORD)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"about": "written by runkit's sync: the paths it sent here, the only ones it may delete",
                       "sent": sorted(record)}, f, indent=0)
        _run(plan.record_argv(path), plan.dest)


def _run(argv, dest, input=""):
    """Run rsync or a script on DEST's host; its stdout, or _Away (transient) or WorkFailed."""
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, errors="surrogateescape",
                          input=input)
    if proc.returncode in (0, VANISHED_EXIT):
        return proc.stdout
    reason = f"{os.path.basename(argv[0])} exit {proc.returncode}: {_rsync_error(proc.stderr)}"
    if proc.returncode in TRANSIENT_EXITS:
        raise _Away(reason)
    raise WorkFailed(f"sync to {dest} failed ({reason})")


def _log(message):
    sys.stdout.flush()
    print(f"sync: {message}", file=sys.stderr, flush=True)


def _rsync_error(stderr):
    """rsync's first specific complaint (the `rsync: ...` line), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    specific = [line for line in lines if line.startswith(("rsync:", "ssh:")) or "Connection" in line]
    return (specific or lines or ["no message"])[0]


def _clip(text, width=60):
    return text if len(text) <= width else text[:width] + "..."


def _last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def watch(plan, settle, force=False, attempts=3):
    """Sync everything, then again after each burst of changes, until interrupted (KeyboardInterrupt).

    Later syncs retry a remote that is away without limit; one that fails otherwise (a full disk, an
    unreadable file) is reported and tried again after the next change.
    """
    from runkit.sync.watch import Watcher
    watcher = Watcher(plan.src, plan.excluded)
    sent = sync_once(plan, open_destination(plan, force), attempts=attempts)
    for _ in watcher.batches(settle):
        try:
            sent = sync_once(plan, sent, attempts=None)
        except WorkFailed as e:
            _log(f"{e}; trying again after the next change")
