"""What one sync is: its source, its destination (a local folder, or `host:path` over ssh) and what it never
sends, checked against each other and the tools on PATH before anything runs (runkit.sync.mirror syncs it)."""
import os
import posixpath
import shlex
import shutil
from dataclasses import dataclass

from runkit.errors import BadInput

RECORD = ".runkit-sync.json"  # on DEST: what sync sent there, the only paths it may delete
ALWAYS_EXCLUDED = [".git", "/.venv", "/results", "/data", "/" + RECORD]
IGNORE_FILES = [".gitignore", ".syncignore"]


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


def parent_of(path):
    return posixpath.dirname(path) or "."


def shell_quote(path):
    """Quote a path for DEST's shell, leaving a leading ~ for it to expand."""
    if path == "~" or path.startswith("~/"):
        return "~/" + shlex.quote(path[2:]) if len(path) > 2 else "~"
    return shlex.quote(path)
