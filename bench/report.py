"""What every bench shares: measuring runkit and its anchor alternately, and one printed line per case.

Each line gives runkit's figure and the anchor's, both measured in the same run, as best and median (the
machine may be shared: the best is the least disturbed measurement), their ratio as runkit's speed over
the anchor's (above 1: runkit is faster), and the target with PASS or MISS, judged on the best figures.
"""
import argparse
import statistics
import subprocess
import time

HEADER = (f"{'case':<30}{'runkit best':>12}{'median':>9}{'anchor best':>13}{'median':>9}  {'unit':<8}"
          f"{'ratio':>7}{'median':>8}  target")


def clock(f, *args, **kwargs):
    """Wall-clock seconds of f(*args, **kwargs)."""
    start = time.perf_counter()
    f(*args, **kwargs)
    return time.perf_counter() - start


def seconds(argv, **kwargs):
    """Wall-clock seconds of a process, output discarded; raises if it fails."""
    return clock(subprocess.run, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, **kwargs)


def alternate(ours, anchor, repeat):
    """Call ours() and anchor() `repeat` times each, alternating which goes first; lists of their figures."""
    figures = {ours: [], anchor: []}
    for i in range(repeat):
        for f in (ours, anchor) if i % 2 == 0 else (anchor, ours):
            figures[f].append(f())
    return figures[ours], figures[anchor]


def header(title):
    print(f"== {title}\n{HEADER}", flush=True)


def row(case, ours, anchor, unit="s", min_ratio=None, max_extra_s=None):
    """Print one case. ours, anchor: lists of figures; unit "s" is lower-is-better, any other a rate.

    The target is a ratio (min_ratio) or at most max_extra_s seconds more than the anchor; neither: none.
    """
    best = min if unit == "s" else max
    o, a, mo, ma = best(ours), best(anchor), statistics.median(ours), statistics.median(anchor)
    ratio, median_ratio = (a / o, ma / mo) if unit == "s" else (o / a, mo / ma)
    if min_ratio is not None:
        target = f">= {min_ratio:g}x {'PASS' if ratio >= min_ratio else 'MISS'}"
    elif max_extra_s is not None:
        target = f"<= anchor + {max_extra_s:g} s (+{o - a:.3f}) {'PASS' if o - a <= max_extra_s else 'MISS'}"
    else:
        target = "(no target)"
    print(f"{case:<30}{o:>12.4g}{mo:>9.4g}{a:>13.4g}{ma:>9.4g}  {unit:<8}{ratio:>7.3g}{median_ratio:>8.3g}  {target}",
          flush=True)


def quick_flag(doc, quick_help):
    """The one option every bench takes: --quick, a short smoke run. Returns True when it was given."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    return parser.parse_args().quick


def at_most(case, figures, limit, unit="s"):
    """Print one case judged on its own figures, as row() judges: the best at most `limit`."""
    best, median = min(figures), statistics.median(figures)
    verdict = "PASS" if best <= limit else "MISS"
    print(f"{case:<30}{best:>12.4g}{median:>9.4g}{'':>13}{'':>9}  {unit:<8}{'':>7}{'':>8}  "
          f"<= {limit:g} {verdict}", flush=True)
