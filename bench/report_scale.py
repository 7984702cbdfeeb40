#!/usr/bin/env python3
"""report at scale: 1,000 synthetic runs x 50 epochs, the page's size and its time to interactive in Chromium.

Writes 1,000 finished run folders once (through runkit.rundir.runs, in a temporary folder: 10 rates x 5 weight
decays x 5 widths x 4 seeds, 50 epochs of train/val loss and accuracy each), runs `report DIR -o page.html` as
a process, and opens the page in headless Chromium (tests/browser.py, offline). Time to interactive is
Chromium's own clock: performance.now() when the page's table is built and the plots in view are drawn
(#ready's data-ms; the page draws each plot when it comes into view). Then every plot is scrolled into view in
turn and waited for (tests/browser.py's draw_all): that time is printed too, with no target. The anchor, measured alternately in the same run, is an empty plotly page: plotly.js inlined and
one empty plot drawn, so the ratio says what the runs cost beyond loading plotly.js at all.
Targets: the page under 10 MB; interactive within 3 s (absolute, and printed against the anchor).

    .venv/bin/python bench/report_scale.py [--quick]      # --quick: 200 runs, 1 repeat
"""
import math
import os
import statistics
import sys
import tempfile
from importlib import resources

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, "lib"))
sys.path.insert(0, os.path.join(REPO, "tests"))

import report  # noqa: E402
from browser import Browser  # noqa: E402
from runkit.rundir import runs  # noqa: E402

EPOCHS = 50
LRS = [10 ** (-4 + k / 3) for k in range(10)]
DECAYS, WIDTHS, SEEDS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2), (32, 64, 128, 256, 512), (0, 1, 2, 3)


def make_runs(root, n):
    """n finished run folders, as train writes them (the files collect and report read)."""
    grid = [(lr, wd, w, s) for lr in LRS for wd in DECAYS for w in WIDTHS for s in SEEDS][:n]
    for lr, wd, width, seed in grid:
        run_dir = os.path.join(root, f"lr={lr:.3g}_wd={wd}_width={width}_seed={seed}")
        os.makedirs(run_dir)
        runs.write_json(run_dir, runs.BINDINGS, {"optimizer.lr": lr, "optimizer.weight_decay": wd,
                                                 "mlp.hidden": width, "training_loop.seed": seed,
                                                 "training_loop.n_epochs": EPOCHS})
        top = 0.97 - 0.02 * (math.log10(lr) + 1.5) ** 2 - 3 * wd + 0.01 * math.log2(width / 32) + seed / 1000
        history = []
        for e in range(1, EPOCHS + 1):
            acc = top - (top - 0.1) * math.exp(-e * lr * 20)
            history.append({"epoch": e, "step": 45 * e, "train_acc": acc, "train_loss": 2.3 * (1 - acc),
                            "val_acc": acc - 0.01, "val_loss": 2.3 * (1.01 - acc), "lr": lr, "time": 0.4 * e})
        best = max(history, key=lambda r: r["val_acc"])
        runs.write_json(run_dir, runs.METRICS, {"monitor": "val_acc", "mode": "max", "final": history[-1],
                                                "best": best})
        runs.write_history(run_dir, history)
        runs.mark_finished(run_dir)


def empty_plotly_page(path):
    plotly_js = resources.files("plotly").joinpath("package_data/plotly.min.js").read_text(encoding="utf-8")
    plotly_js = plotly_js.replace("</script", "<\\/script")
    with open(path, "w") as f:
        f.write(f"<!DOCTYPE html><html><head><meta charset='utf-8'><script>{plotly_js}"
                "</script></head><body><div id='p'></div><div id='ready'></div><script>"
                "Plotly.newPlot('p', [], {}).then(() => { document.getElementById('ready').dataset.ms = "
                "performance.now().toFixed(1); });</script></body></html>")


def interactive_s(path, scrolled):
    """Seconds from navigation to #ready, by Chromium's clock, in a fresh browser; appends to scrolled the
    seconds from #ready until every plot was drawn, scrolled to in turn."""
    with Browser() as browser:
        page = browser.open(path)
        ms = page.ready(timeout=300)
        scrolled.append(page.draw_all(timeout=300) / 1000)
        errors = page.errors()
        if errors:
            raise RuntimeError(f"{path}: {errors[:3]}")
        return ms / 1000


def main():
    quick = report.quick_flag(__doc__, "200 runs, 1 repeat")
    n, repeat = (200, 1) if quick else (1000, 3)
    report.header(f"report: {n:,} runs x {EPOCHS} epochs in headless Chromium, against an empty plotly page")
    with tempfile.TemporaryDirectory() as tmp:
        root, page, anchor = os.path.join(tmp, "sweep"), os.path.join(tmp, "page.html"), os.path.join(tmp, "empty.html")
        make_runs(root, n)
        empty_plotly_page(anchor)
        made = report.seconds([sys.executable, os.path.join(REPO, "tools", "report"), root, "-o", page],
                              env={**os.environ, "PYTHONPATH": os.path.join(REPO, "lib")})
        scrolled = []
        ours, base = report.alternate(lambda: interactive_s(page, scrolled), lambda: interactive_s(anchor, []),
                                      repeat)
        report.row(f"interactive, {n:,} runs", ours, base, max_extra_s=3)
        print(f"  then every plot drawn, scrolled to in turn: best {min(scrolled):.2f} s, median "
              f"{statistics.median(scrolled):.2f} s more (no target)")
        mb, base_mb = os.path.getsize(page) / 1e6, os.path.getsize(anchor) / 1e6
        print(f"  interactive within 3 s (best {min(ours):.2f} s): {'PASS' if min(ours) <= 3 else 'MISS'}")
        print(f"  page size: {mb:.2f} MB ({mb / base_mb:.2f}x the empty plotly page's {base_mb:.2f} MB); "
              f"target < 10 MB: {'PASS' if mb < 10 else 'MISS'}")
        print(f"  report {n:,} runs -> page.html (a process, once): {made:.2f} s")


if __name__ == "__main__":
    main()
