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
import re
import subprocess
import sys
import tempfile
import time

from runkit import cli
from runkit.errors import WorkFailed
from runkit.sync.destination import open_destination
from runkit.sync.plan import RECORD, shell_quote

# rsync exit codes that mean "the remote or the link may come back": socket I/O, protocol stream, timeouts, ssh.
TRANSIENT_EXITS = {10, 12, 30, 35, 255}
VANISHED_EXIT = 24  # a file vanished while rsync read it: an edit in progress, the next sync catches up
MAX_BACKOFF_S = 60
_ITEM = re.compile(r"^([<>ch.][fdLDS].{9}) (.+)$")  # `--out-format=%i %n`: the itemized change, the name
_ESCAPED = re.compile(r"\\#([0-7]{3})")  # how rsync writes a control character (a newline) in a name


# Deletes the NUL-separated paths on stdin (files first, then folders deepest first), inside DEST: files
# with one rm -f (which leaves folders alone), then each folder (ending in /) with rmdir, which leaves one
# that still holds something. What cannot be deleted stays; it is not an error. (rsync's
# --delete-missing-args cannot do this: it deletes a folder with all it holds, or refuses the whole folder.)
_DELETE = ("cd -P -- {dest} || exit 3; xargs -0 sh -c 'rm -f -- \"$@\" 2>/dev/null; "
           "for p; do case $p in */) rmdir -- \"$p\" 2>/dev/null;; esac; done; exit 0' sh")



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
        _run(plan.shell_argv(_DELETE.format(dest=shell_quote(plan.dest.path))), plan.dest,
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
    cli.say(message)


def _rsync_error(stderr):
    """rsync's first specific complaint (the `rsync: ...` line), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    specific = [line for line in lines if line.startswith(("rsync:", "ssh:")) or "Connection" in line]
    return (specific or lines or ["no message"])[0]


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
