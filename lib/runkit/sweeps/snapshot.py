"""Frozen code: a copy of the project made when a batch is submitted, from which every task of the batch runs.

    BATCH/code/        the project's files as they were: tracked files with their uncommitted changes, and
                       untracked files git does not ignore (results, data and the venv are ignored or skipped)
    BATCH/code.json    {"snapshot", "source", "git_commit", "git_dirty", "git_diff", "files", "bytes", "seconds"}

A task runs the spec's argv with these changes (`command`): a word that names a file of the project (a config,
a script: absolute, relative to the working folder, or after `--flag=`) names the snapshot's copy; a runkit
tool (`train`) runs the snapshot's tools/TOOL; PYTHONPATH entries inside the project point into the snapshot;
and RUNKIT_CODE_SNAPSHOT names it, so that train's meta.json records the snapshot and its commit. The working
folder and the run folders stay where they are. The copies are real copies, not hard links: an editor that
writes a file in place must not change the snapshot.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from typing import Any

from runkit import cli
from runkit.errors import BadInput
from runkit.git import git, state

ENV = "RUNKIT_CODE_SNAPSHOT"
FOLDER, MANIFEST = "code", "code.json"
SKIP = {".venv", "venv", ".git", "results", "data"}  # top-level folders never copied, ignored by git or not


class NoProject(BadInput):
    """There is no git checkout to snapshot."""


def project_root(cwd: str | None = None) -> str:
    """The git checkout to freeze: the one holding the working folder, else the one holding runkit's code."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for folder in (cwd or os.getcwd(), here):
        top = git(folder, "rev-parse", "--show-toplevel")
        if top:
            return top.strip()
    raise NoProject("no git checkout here or around runkit's code to snapshot: run it from your project's "
                    "checkout, or use --live-code")


def files(root: str, batch_dir: str | None = None) -> list[str]:
    """The project's files, relative to root: tracked (as they are now) and untracked but not ignored; never
    what lies under $RESULTS_DIR, $DATA_DIR or the folder of the batch's run folders (earlier snapshots)."""
    listed = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed is None:
        raise NoProject(f"git ls-files failed in {root}")
    skip_under = [os.path.abspath(os.environ[v]) for v in ("RESULTS_DIR", "DATA_DIR") if os.environ.get(v)]
    if batch_dir:
        batches = os.path.dirname(os.path.abspath(batch_dir))  # RESULTS/batches
        results = os.path.dirname(batches)
        for folder in (results, batches):  # the first that does not hold the whole project
            if not (root == folder or root.startswith(folder + os.sep)):
                skip_under.append(folder)
                break
    out = []
    for name in dict.fromkeys(listed.split("\0")):
        if not name or name.split("/", 1)[0] in SKIP:
            continue
        full = os.path.join(root, name)
        if any(full == d or full.startswith(d + os.sep) for d in skip_under):
            continue
        if os.path.lexists(full) and not os.path.isdir(full):  # a deleted tracked file is not there any more
            out.append(name)
    return out


def make(batch_dir: str, root: str | None = None) -> dict[str, Any]:
    """Copy the project into BATCH/code and write BATCH/code.json; returns the manifest."""
    started = time.monotonic()
    root = root or project_root()
    dest = os.path.join(batch_dir, FOLDER)
    size = 0
    names = files(root, batch_dir)
    for name in names:
        source, target = os.path.join(root, name), os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(source):
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)
            size += os.path.getsize(target)
    manifest = {"snapshot": dest, "source": root, **state(root), "files": len(names), "bytes": size,
                "seconds": round(time.monotonic() - started, 3)}
    with open(os.path.join(batch_dir, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def said(root: str, made: dict[str, Any]) -> str:
    """What a runner says of a snapshot it made (manifest `made`)."""
    return (f"froze the code of {root} into {made['snapshot']} ({made['files']} files, "
            f"{made['bytes'] / 1e6:.1f} MB, {made['seconds']:.2f} s)")


def read(snapshot_dir: str) -> dict[str, Any]:
    with open(os.path.join(os.path.dirname(snapshot_dir), MANIFEST), encoding="utf-8") as f:
        return json.load(f)


def current() -> dict[str, Any] | None:
    """meta.json's code fields of a process started from a snapshot, else None."""
    where = os.environ.get(ENV)
    if not where:
        return None
    try:
        manifest = read(where)
    except (OSError, ValueError):
        return {"code_snapshot": where, "git_commit": None, "git_dirty": None, "git_diff": None}
    return {"code_snapshot": where, "git_commit": manifest.get("git_commit"), "git_dirty": manifest.get("git_dirty"),
            "git_diff": manifest.get("git_diff")}


def command(argv: list[str], env: Mapping[str, str], snapshot_dir: str,
            cwd: str | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, env) to run a spec's argv from the snapshot (see the module's doc)."""
    root = read(snapshot_dir)["source"]
    cwd = cwd or os.getcwd()

    def frozen(path: str) -> str | None:
        """The snapshot's copy of path if path is a file of the project, else None."""
        full = os.path.normpath(os.path.join(cwd, path))
        if full != root and not full.startswith(root + os.sep):
            return None
        copy = os.path.join(snapshot_dir, os.path.relpath(full, root))
        return copy if os.path.lexists(copy) else None

    def word(text: str) -> str:
        if not text or "\n" in text:
            return text
        copy = frozen(text)
        if copy:
            return copy
        flag, eq, value = text.partition("=")
        if eq and flag.startswith("-") and value and frozen(value):
            return f"{flag}={frozen(value)}"
        return text

    out = [word(w) for w in argv[1:]]
    first = argv[0]
    tool = os.path.join(snapshot_dir, "tools", first)
    if os.sep not in first and first in cli.TOOLS and os.path.isfile(tool):
        head = [sys.executable, tool]
    else:
        head = [word(first) if os.sep in first else first]
    env = dict(env)
    paths = [frozen(p) or p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    lib = os.path.join(snapshot_dir, "lib")
    if os.path.isdir(os.path.join(lib, "runkit")) and lib not in paths:
        paths.insert(0, lib)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env[ENV] = snapshot_dir
    return head + out, env
