"""The kit's timestamps, one format each: what a record file says (FINISHED, STOPPED, error.json, meta.json,
batch.json) and what names a batch folder, and what starts a line of train.log."""
from __future__ import annotations

import time

RECORD = "%Y-%m-%dT%H:%M:%S%z"   # 2026-12-07T19:52:03+0000: local time with its offset
FOLDER = "%Y%m%d-%H%M%S"         # a batch folder's name: sorts by time, no characters a shell quotes
LINE = "%Y-%m-%dT%H:%M:%S"       # a line of train.log: local time


def now_iso() -> str:
    """Now, as record files say it."""
    return time.strftime(RECORD)


def now_line() -> str:
    """Now, as a line of train.log starts."""
    return time.strftime(LINE)


def now_stamp() -> str:
    """Now, as a folder name."""
    return time.strftime(FOLDER)
