#!/usr/bin/env python3
"""runbatch -j 2 over 300 specs whose argv is `true`, against `seq 300 | parallel -j2 true` (GNU parallel).

Both as processes, alternating, wall clock. runbatch does more per job than parallel (a run folder, its
lock, two log files, an outcome line), so this measures what that bookkeeping costs. Target: no slower.

    .venv/bin/python bench/runbatch.py [--quick]
"""
import json
import os
import shutil
import sys
import tempfile

import report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 300


def runbatch(n):
    with tempfile.TemporaryDirectory() as root:
        specs = "".join(json.dumps({"name": f"r{i}", "run_dir": os.path.join(root, f"r{i}"), "argv": ["true"]})
                        + "\n" for i in range(n))
        return report.seconds([sys.executable, os.path.join(REPO, "tools", "runbatch"), "-j", "2"], input=specs,
                              text=True)


def parallel(n):
    return report.seconds(["parallel", "-j2", "true"], input="".join(f"{i}\n" for i in range(n)), text=True)


def main():
    quick = report.quick_flag(__doc__, "3 repeats instead of 9")
    if not shutil.which("parallel"):
        sys.exit("bench/runbatch.py: GNU parallel is not installed (apt-get install parallel)")
    report.header(f"runbatch -j 2 against GNU parallel -j2, {N} jobs of `true`")
    report.row(f"runbatch -j 2, {N} x true", *report.alternate(lambda: runbatch(N), lambda: parallel(N), 3 if quick else 9),
               min_ratio=1)


if __name__ == "__main__":
    main()
