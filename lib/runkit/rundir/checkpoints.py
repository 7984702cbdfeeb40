"""Checkpoints that are trusted only when sound: a checkpoint cut short or with flipped bytes (a copy
interrupted, bad storage) is never loaded, and a damaged last.ckpt never makes every rerun fail.

- Each checkpoint gets a digest beside it, computed while the file is written and put in place just before
  the file is renamed to its name: `last.ckpt.sha256` holds `sha256sum`'s line for `last.ckpt`
  (`<64 hex digits>  last.ckpt`). A checkpoint is *sound* when its digest matches its bytes. One with no
  digest (a checkpoint of a runkit before digests, a file put there by hand) is sound when the zip archive
  torch wrote is whole and every member's CRC-32 checks: every checkpoint file is written to a temporary
  name and renamed, so such a file can only be damaged from outside.
- A checkpoint is the run's own (`trusted`: unpickled whole, whatever its hyperparameters hold) when the
  digest runkit wrote beside it matches; any other file loads with torch's safe `weights_only` loader
  (docs/run-folder.md#whose-checkpoints-are-unpickled).
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
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from typing import Any

from runkit.errors import BadInput
from runkit.rundir import runs
from runkit.rundir.lock import Folder

DIGEST = ".sha256"   # the digest file's suffix: last.ckpt.sha256
LAST, PREVIOUS = "last.ckpt", "prev.ckpt"
BLOCK = 1 << 20      # bytes read at a time when hashing or copying
_verified: dict = {}  # (path, inode, size, mtime) -> why it is not sound, or None: a file is hashed once


class NoSoundCheckpoint(BadInput, ValueError):
    """Checkpoints exist but none is sound: resuming would train from a damaged file."""


def digest_line(data: bytes, name: str) -> str:
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n"


class _Hashing:
    """A file object that hashes what is written through it (torch.save streams into it: no copy in memory)."""

    def __init__(self, file: Any) -> None:
        self.file, self.sha256 = file, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def write(path: str | os.PathLike[str], fill: Callable[[Any], Any]) -> None:
    """Write a checkpoint at path by `fill(stream)`, hashing as it streams, then its digest; a sound last.ckpt
    is kept as prev.ckpt first. At every instant a sound checkpoint exists (the module's docstring)."""
    path = os.fspath(path)
    name, folder = os.path.basename(path), os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    for stale in [n for n in os.listdir(folder) if n.startswith(f".{name}.") and n.endswith(".tmp")]:
        _remove(os.path.join(folder, stale))  # a save killed while writing: the run's lock makes it ours
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            stream = _Hashing(f)
            fill(stream)
            f.flush()
            os.fsync(f.fileno())
        if name == LAST:
            _keep_previous(path)
        _remove(path + DIGEST)  # from here until the rename, path is not sound (or missing: prev.ckpt is)
        runs.write_atomic(path + DIGEST, f"{stream.sha256.hexdigest()}  {name}\n")
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    _remember_sound(path)


def save(path: str | os.PathLike[str], data: bytes) -> None:
    """Write checkpoint bytes at path (write)."""
    write(path, lambda stream: stream.write(data))


def copy(source: str, target: str) -> None:
    """Copy a checkpoint with the same care as save, streamed (last.ckpt from best.ckpt)."""
    with open(source, "rb") as f:
        write(target, lambda stream: shutil.copyfileobj(f, stream, BLOCK))


def remove(path: str | os.PathLike[str]) -> None:
    """Delete a checkpoint and its digest (a user's ModelCheckpoint dropping an old top-k file)."""
    _remove(os.fspath(path))
    _remove(os.fspath(path) + DIGEST)


def trusted(path: str | os.PathLike[str]) -> bool:
    """Whether the checkpoint at path is the run's own, to be unpickled whole: the digest runkit wrote beside
    it matches its bytes. Anything else (no digest, a file from elsewhere) keeps torch's weights_only loader."""
    path = os.fspath(path)
    return os.path.exists(path + DIGEST) and damage(path) is None


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
    if not expected or expected[0] != _hash(path):
        return f"its bytes do not match {os.path.basename(path)}{DIGEST}: cut short or changed after it was written"
    return None


def _hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _remember_sound(path: str) -> None:
    """A file just written with its digest is sound: no rehash when it is kept as prev.ckpt or resumed."""
    stat = os.stat(path)
    for key in [key for key in _verified if key[0] == path]:
        del _verified[key]
    _verified[(path, stat.st_ino, stat.st_size, stat.st_mtime_ns)] = None


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
    renames, last.ckpt is still sound; after them, prev.ckpt is."""
    if damage(path) is not None:
        return  # nothing sound to keep (missing, or damaged: a sound prev.ckpt stays)
    previous = os.path.join(os.path.dirname(path), PREVIOUS)
    try:
        with open(path + DIGEST, encoding="utf-8") as f:
            digest = f.read().split()[0]
    except FileNotFoundError:  # sound by its CRC-32s: a checkpoint of a runkit before digests
        digest = _hash(path)
    _remove(previous + DIGEST)  # the old prev.ckpt is unsound from here: last.ckpt is sound meanwhile
    runs.write_atomic(path + DIGEST + ".tmp", f"{digest}  {PREVIOUS}\n")
    os.replace(path + DIGEST + ".tmp", previous + DIGEST)
    os.replace(path, previous)
    _remember_sound(previous)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
