"""DEST looked at once, before the first sync (over ssh: one login): what it is on its host, and the record of
the paths sync sent there, the only ones it may delete."""
import json
import posixpath
import subprocess

from runkit.errors import BadInput
from runkit.sync.plan import RECORD, parent_of, shell_quote

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

def open_destination(plan, force=False):
    """Before the first sync, look at DEST once (over ssh: one login) and return the paths sync sent there.

    Refuses, writing nothing: a host that does not answer or lacks rsync, a DEST whose parent is missing,
    a DEST that is a home folder, `/` or any folder above a home (after `~`, `..` and symlinks are resolved
    on DEST's host), and a DEST that holds files but no record unless `force` (it adopts the folder, and
    still deletes only what it sends).
    """
    dest, host = plan.dest, plan.dest.host
    try:
        proc = subprocess.run(plan.shell_argv(_PROBE.format(dest=shell_quote(dest.path), record=RECORD,
                                                            parent=shell_quote(parent_of(dest.path)))),
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
    host, parent = plan.dest.host, parent_of(plan.dest.path)
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


def _clip(text, width=60):
    return text if len(text) <= width else text[:width] + "..."


def _last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
