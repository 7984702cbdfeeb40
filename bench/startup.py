"""Start-up time of the light tools (`TOOL --help`) against `python -c pass`, measured in the same run.

Target: each within 0.1 s of bare Python. Usage: python bench/startup.py [--repeat 20]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIGHT_TOOLS = ["gridgen", "runbatch", "collect"]


def median_seconds(argv, repeat, env):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
    anchor = median_seconds([sys.executable, "-c", "pass"], args.repeat, env)
    print(f"{'command':<22}{'median s':>10}{'python -c pass':>16}{'difference':>12}{'ratio':>8}")
    worst = 0.0
    for tool in LIGHT_TOOLS:
        ours = median_seconds([sys.executable, str(REPO / "tools" / tool), "--help"], args.repeat, env)
        worst = max(worst, ours - anchor)
        print(f"{tool + ' --help':<22}{ours:>10.3f}{anchor:>16.3f}{ours - anchor:>+12.3f}{ours / anchor:>8.2f}")
    print(f"worst difference {worst:+.3f} s (target: within +0.100 s)")


if __name__ == "__main__":
    main()
