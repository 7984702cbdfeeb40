"""Checkpoints that are trusted only when sound: a checkpoint cut short or with flipped bytes (a copy
interrupted, bad storage) is never loaded, and a damaged last.ckpt never makes every rerun fail.

- Each checkpoint gets a digest beside it, written after the file is complete: `last.ckpt.sha256` holds
  `sha256sum`'s line for `last.ckpt` (`<64 hex digits>  last.ckpt`). A checkpoint is *sound* when its
  digest matches its bytes. One with no digest (a save killed between the file's rename and its digest, or
  a checkpoint of a runkit before digests) is sound when the zip archive torch wrote is whole and every
  member's CRC-32 checks: every checkpoint file is written to a temporary name and renamed, so such a
  file can only be damaged from outside.
- Before last.ckpt is replaced, the sound checkpoint it holds is moved aside as prev.ckpt (a rename, no
  copy, and never the same file as last.ckpt, so damage to one does not reach the other), its digest
  first. At every instant of a save at least one sound checkpoint exists.
- A rerun resumes from the newest sound one (last.ckpt, else prev.ckpt) and says why when it is not
  last.ckpt; with checkpoints present but none sound, NoSoundCheckpoint names the file and `--restart`.

No torch here: light tools and runkit.runs may ask which checkpoint a rerun would resume from.
"""
from __future__ import annotations

import hashlib
import os
import zipfile

from runkit.errors import BadInput
from runkit.rundir import runs
from runkit.rundir.lock import Folder

DIGEST = ".sha256"   # the digest file's suffix: last.ckpt.sha256
LAST, PREVIOUS = "last.ckpt", "prev.ckpt"
_verified: dict = {}  # (path, inode, size, mtime) -> why it is not sound, or None: a file is hashed once


class NoSoundCheckpoint(BadInput, ValueError):
    """Checkpoints exist but none is sound: resuming would train from a damaged file."""


def digest_line(data: bytes, name: str) -> str:
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n"


def save(path: str | os.PathLike[str], data: bytes) -> None:
    """Write checkpoint bytes at path, then its digest; keep a sound last.ckpt as prev.ckpt first."""
    path = os.fspath(path)
    name = os.path.basename(path)
    if name == LAST:
        _keep_previous(path)
    _remove(path + DIGEST)  # from here until the new digest is written, path is not sound
    runs.write_atomic(path, data)
    runs.write_atomic(path + DIGEST, digest_line(data, name))


def copy(source: str, target: str) -> None:
    """Copy a checkpoint with the same care as save (last.ckpt from best.ckpt)."""
    with open(source, "rb") as f:
        save(target, f.read())


def damage(path: str) -> str | None:
    """Why the checkpoint at path is not sound ("cut short or changed...", "no digest..."), or None."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return "missing"
    key = (path, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        _verified[key] = _check(path)
    return _verified[key]


def _check(path: str) -> str | None:
    try:
        with open(path + DIGEST, encoding="utf-8") as f:
            expected = f.read().split()
    except FileNotFoundError:
        return _check_archive(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if not expected or expected[0] != digest.hexdigest():
        return f"its bytes do not match {os.path.basename(path)}{DIGEST}: cut short or changed after it was written"
    return None


def _check_archive(path: str) -> str | None:
    """Why a checkpoint without a digest is not sound (a zip archive cut short, or a member's CRC-32 wrong)."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        return f"it has no digest and is not a whole checkpoint archive ({e})"
    return f"it has no digest and its member {bad} fails its CRC-32" if bad else None


def resume_point(run_dir: Folder) -> tuple[str | None, str | None]:
    """(path of the newest sound checkpoint, or None to start fresh; a message when it is not last.ckpt).

    NoSoundCheckpoint when checkpoints exist but none is sound."""
    folder = os.path.join(run_dir, runs.CHECKPOINTS)
    last, previous = os.path.join(folder, LAST), os.path.join(folder, PREVIOUS)
    if not os.path.exists(last) and not os.path.exists(previous):
        return None, None
    why = damage(last)
    if why is None:
        return last, None
    if damage(previous) is None:
        return previous, f"{last} is not sound ({why}); resuming from {previous}, the previous sound checkpoint"
    raise NoSoundCheckpoint(f"{last} is damaged ({why}) and no sound checkpoint is beside it: "
                            "rerun with --restart to start the run over")


def _keep_previous(path: str) -> None:
    """prev.ckpt := last.ckpt, if last.ckpt is sound, moved (its digest first): killed between the two
    renames, last.ckpt is whole without a digest (sound by its CRCs); after them, prev.ckpt is."""
    if damage(path) is not None:
        return  # nothing sound to keep (missing, or damaged: a sound prev.ckpt stays)
    previous = os.path.join(os.path.dirname(path), PREVIOUS)
    try:
        with open(path + DIGEST, encoding="utf-8") as f:
            digest = f.read().split()[0]
    except FileNotFoundError:  # sound by its CRC-32s: a save killed before its digest (seen after kill -9)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    _remove(previous + DIGEST)  # the old prev.ckpt is unsound from here: last.ckpt is sound meanwhile
    runs.write_atomic(path + DIGEST + ".tmp", f"{digest}  {PREVIOUS}\n")
    os.replace(path + DIGEST + ".tmp", previous + DIGEST)
    os.replace(path, previous)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
