#!/usr/bin/env python3
"""Start-up of the light tools (`TOOL --help`) against `python -c pass`, alternating, in the same run.

Target: each within 0.1 s of bare Python (the light tools import no torch, Lightning or pandas).

    .venv/bin/python bench/startup.py [--quick]
"""
import os
import sys

import report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIGHT_TOOLS = ["gridgen", "runbatch", "collect"]


def main():
    quick = report.quick_flag(__doc__, "5 repeats instead of 20")
    repeat = 5 if quick else 20
    bare = lambda: report.seconds([sys.executable, "-c", "pass"])  # noqa: E731
    report.header("start-up: TOOL --help against python -c pass")
    for tool in LIGHT_TOOLS:
        argv = [sys.executable, os.path.join(REPO, "tools", tool), "--help"]
        report.row(f"{tool} --help", *report.alternate(lambda argv=argv: report.seconds(argv), bare, repeat), max_extra_s=0.1)


if __name__ == "__main__":
    main()
