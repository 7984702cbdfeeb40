#!/usr/bin/env python3
"""How long does a checkpoint stop training, and how much memory does it take? runkit's writer
(runkit.training.checkpoint_io.AtomicCheckpointIO: the state staged on the loop; pickled, written, hashed,
renamed and rotated in a background thread) against Lightning's default TorchCheckpointIO (the whole save on
the loop), on the same state.

The state: an MLP's weights and Adam's two moments (256 MB and 1 GB; --quick: 32 and 64 MB; --size: one
of them), trained on random data on the CPU (one torch thread) and saved as last.ckpt every 4 steps of the
training loop, as RunRecorder saves it (model and optimizer state dicts, global step). Each measurement is a process of its own, so that its peak
RSS is its own; runkit's, Lightning's and a run without saves alternate. Printed per size:
- blocked per save: seconds the loop spends in save_checkpoint (the median of the process's saves, waiting
  for the previous save included); target: runkit's at most 0.25x Lightning's (a ratio >= 4 below: the
  ratio is Lightning's time over runkit's);
- peak RSS above the process's baseline (its peak after two training steps, before any save), as a multiple
  of the state; target: runkit's at most 1.2x;
- whole run: the loop's wall clock with runkit's saves (the last one waited for) against the loop without
  saves; no target.

    .venv/bin/python bench/checkpoint.py [--quick] [--size MB]
"""
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, "lib"))

import report  # noqa: E402

# MB, steps, a save every so many steps, repeats (each a process per kind): 1 GB once, at a few minutes a process here
SIZES = {"full": ((256, 12, 4, 2), (1024, 8, 4, 1)), "quick": ((32, 12, 4, 2), (64, 12, 4, 2))}
KINDS = ("runkit", "lightning", "none")
MB = 1 << 20


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def measure(kind, mb, steps, every, folder):
    """One process's figures: {"blocked": [s per save], "extra_rss": bytes, "state": bytes, "total": s}."""
    import torch
    from lightning_fabric.plugins import TorchCheckpointIO

    from runkit.training.checkpoint_io import AtomicCheckpointIO
    torch.manual_seed(0)
    torch.set_num_threads(1)  # training on one core, the other free for a writer thread (2 cores here)
    width = int((mb * MB / 4 / 3 / 4) ** 0.5)  # 4 square layers; weights and Adam's two moments, float32
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(4)])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(4, width)

    def step():
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()

    step()
    step()  # Adam's moments exist: the whole state is there
    state = sum(t.numel() * t.element_size() for t in [*model.state_dict().values(),
                *(v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v))])
    baseline = peak_rss()
    writer = {"runkit": AtomicCheckpointIO, "lightning": TorchCheckpointIO}.get(kind, lambda: None)()
    path, blocked = os.path.join(folder, "last.ckpt"), []
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step()
        if writer is not None and i % every == 0:
            saving = time.perf_counter()
            writer.save_checkpoint({"state_dict": model.state_dict(), "optimizer_states": [optimizer.state_dict()],
                                    "global_step": i}, path)
            blocked.append(time.perf_counter() - saving)
    if writer is not None:
        getattr(writer, "wait", lambda: None)()  # runkit's last save is complete, as before a run ends
    return {"blocked": blocked, "extra_rss": peak_rss() - baseline, "state": state,
            "total": time.perf_counter() - start}


def run(kind, mb, steps, every):
    folder = tempfile.mkdtemp(prefix="runkit-bench-checkpoint-")
    try:
        done = subprocess.run([sys.executable, __file__, "--measure", kind, str(mb), str(steps), str(every), folder],
                              capture_output=True, text=True, check=True)
        return json.loads(done.stdout.splitlines()[-1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def memory_row(case, ours, anchor, most):
    """Peak RSS above the baseline, as multiples of the state: lower is better; target: ours <= most."""
    o, a, mo, ma = min(ours), min(anchor), statistics.median(ours), statistics.median(anchor)
    print(f"{case:<30}{o:>12.3g}{mo:>9.3g}{a:>13.3g}{ma:>9.3g}  {'x state':<8}{a / o:>7.3g}{ma / mo:>8.3g}  "
          f"runkit <= {most:g}x the state {'PASS' if o <= most else 'MISS'}", flush=True)


def main():
    if sys.argv[1:2] == ["--measure"]:
        kind, mb, steps, every, folder = sys.argv[2:]
        print(json.dumps(measure(kind, int(mb), int(steps), int(every), folder)))
        return
    only = None
    if "--size" in sys.argv:  # --size MB: that size alone
        at = sys.argv.index("--size")
        only = int(sys.argv.pop(at + 1))
        sys.argv.pop(at)
    quick = report.quick_flag(__doc__, "32 and 64 MB states: a smoke run")
    report.header("checkpoints: runkit's writer against Lightning's TorchCheckpointIO on the same state")
    for mb, steps, every, repeat in SIZES["quick" if quick else "full"]:
        if only is not None and mb != only:
            continue
        figures = {kind: [] for kind in KINDS}
        for i in range(repeat):
            for kind in KINDS[i % 3:] + KINDS[:i % 3]:  # each goes first in turn
                figures[kind].append(run(kind, mb, steps, every))
        size = f"{mb} MB state, save every {every}"
        blocked = {k: [statistics.median(f["blocked"]) for f in figures[k]] for k in ("runkit", "lightning")}
        report.row(f"blocked per save, {mb} MB", blocked["runkit"], blocked["lightning"], min_ratio=4)
        memory = {k: [f["extra_rss"] / f["state"] for f in figures[k]] for k in ("runkit", "lightning")}
        memory_row(f"peak RSS above base, {mb} MB", memory["runkit"], memory["lightning"], 1.2)
        report.row(f"whole run vs no saves, {mb} MB", [f["total"] for f in figures["runkit"]],
                   [f["total"] for f in figures["none"]])
        state = figures["runkit"][0]["state"] / MB
        print(f"  ({size} of {steps} steps; the state is {state:.0f} MB; Lightning's whole run: "
              f"{statistics.median(f['total'] for f in figures['lightning']):.2f} s median)", flush=True)


if __name__ == "__main__":
    main()
