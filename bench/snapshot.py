#!/usr/bin/env python3
"""The cost of freezing the code (runkit.sweeps.snapshot.make: this checkout into a batch folder) against
`git archive HEAD | tar -x` of the same checkout (the committed files only), alternating, in the same run.

Target: within 0.5 s of git archive (a submission must not wait on it).

    .venv/bin/python bench/snapshot.py [--quick]
"""
import os
import shutil
import subprocess
import sys
import tempfile

import report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "lib"))

from runkit.sweeps import snapshot  # noqa: E402


def main():
    quick = report.quick_flag(__doc__, "5 repeats instead of 20")
    repeat = 5 if quick else 20
    scratch = tempfile.mkdtemp(prefix="bench-snapshot-")
    made = []

    def ours():
        target = tempfile.mkdtemp(dir=scratch)
        seconds = report.clock(lambda: made.append(snapshot.make(target, REPO)))
        shutil.rmtree(target)
        return seconds

    def archive():
        target = tempfile.mkdtemp(dir=scratch)
        seconds = report.clock(subprocess.run, f"git -C {REPO} archive HEAD | tar -x -C {target}", shell=True,
                               check=True)
        shutil.rmtree(target)
        return seconds

    try:
        report.header(f"snapshot of {REPO} against git archive HEAD | tar -x")
        report.row("snapshot.make", *report.alternate(ours, archive, repeat), max_extra_s=0.5)
    finally:
        shutil.rmtree(scratch)
    print(f"a snapshot: {made[-1]['files']} files, {made[-1]['bytes'] / 1e6:.2f} MB", flush=True)


if __name__ == "__main__":
    main()
