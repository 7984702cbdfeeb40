"""runbatch -j2 over 300 `true` specs vs `seq 300 | parallel -j2 true`: the cost of running a job.

    .venv/bin/python bench/runbatch.py [N]      # default 300

Wall clock, best of 3. runbatch does more per job than parallel (a run folder, its lock, two log files,
a FINISHED marker and an outcome line), so this measures what that bookkeeping costs.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(argv, stdin_text):
    start = time.perf_counter()
    subprocess.run(argv, input=stdin_text, text=True, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main(n):
    runbatch = [sys.executable, str(REPO / "tools" / "runbatch"), "-j", "2"]
    ours = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as root:
            specs = "".join(json.dumps({"name": f"r{i}", "run_dir": os.path.join(root, f"r{i}"), "argv": ["true"]})
                            + "\n" for i in range(n))
            ours.append(timed(runbatch, specs))
    line = f"runbatch -j2, {n} x true: {min(ours):.2f} s"
    if shutil.which("parallel"):
        theirs = min(timed(["parallel", "-j2", "true"], "".join(f"{i}\n" for i in range(n))) for _ in range(3))
        line += f"; seq {n} | parallel -j2 true: {theirs:.2f} s; ratio {min(ours) / theirs:.2f}"
    print(line)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
