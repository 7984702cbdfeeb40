"""git, asked about a checkout: what the code snapshot (sweeps.snapshot) and train's meta.json record of the
code a run ran (its commit, whether it had uncommitted changes, and their diff)."""
from __future__ import annotations

import subprocess


def git(root: str, *args: str, timeout: float = 60) -> str | None:
    """`git -C root ARGS`'s stdout, or None if git is missing, fails, or does not answer in `timeout` seconds."""
    try:
        done = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def state(root: str, timeout: float = 60) -> dict[str, str | bool | None]:
    """{"git_commit", "git_dirty", "git_diff"} of the checkout holding root; None each outside one (or before
    its first commit). Dirty: uncommitted changes to tracked files, or untracked files git does not ignore."""
    commit = git(root, "rev-parse", "HEAD", timeout=timeout)
    if commit is None:
        return {"git_commit": None, "git_dirty": None, "git_diff": None}
    diff = git(root, "diff", "HEAD", timeout=timeout) or ""
    return {"git_commit": commit.strip(),
            "git_dirty": bool(diff or git(root, "status", "--porcelain", timeout=timeout)), "git_diff": diff}
