#!/usr/bin/env python3
"""How fast is train? Its loop's steps/s against a plain PyTorch loop, and its time to the first step.

Steps/s: both loops batch the same in-memory tensors (a fresh permutation per epoch, index, forward,
backward, step) in this process, alternating. runkit's Loop runs with its essential callbacks (checkpoints
every checkpoint.every_n_steps steps) but without per-epoch validation, which the plain loop lacks.
Targets: 0.95 of plain PyTorch for a small CNN on 32x32 inputs, 0.8 for a tiny MLP on the digits.

First step: wall clock from spawning `train RUN configs/digits_mlp.gin` to its first optimizer step (seen
through bench/first_step.py, a callback gin imports into the real tool), against a plain PyTorch script
that imports torch, loads the digits and takes one step. No target; the imports that dominate it are
timed alongside.

    .venv/bin/python bench/loop.py [--quick]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, "lib"))

import report  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from first_step import PREFIX  # noqa: E402
from runkit import config  # noqa: E402
from runkit.data import Dataset  # noqa: E402
from runkit.registry import DATASETS, MODELS  # noqa: E402


@DATASETS.register("bench_random32")
def random32(n=2048):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    return Dataset(x, y, x[:256], y[:256], n_classes=10)


CASES = {  # name: (model, dataset, batch size, steps per timing, target ratio)
    "cnn_random32": ("cnn", "bench_random32", 128, 60, 0.95),
    "mlp_digits": ("mlp", "digits", 32, 2000, 0.8),
}

PLAIN_FIRST_STEP = """\
import time, torch
from sklearn.datasets import load_digits
d = load_digits()
x, y = torch.tensor(d.images, dtype=torch.float32).flatten(1), torch.tensor(d.target)
model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
torch.nn.functional.cross_entropy(model(x[:32]), y[:32]).backward()
opt.step()
print(f"{time.time():.6f}")
"""
IMPORTS = {  # what dominates the time to the first step: imports, cumulative
    "python -c pass": "pass",
    "torch": "import torch",
    "+ sklearn.datasets (the plain script's)": "import torch, sklearn.datasets",
    "+ runkit's components (train's)": "import sklearn.datasets, runkit.config; runkit.config.register_components()",
}


def runkit_steps(loop, steps):
    """Steps/s of loop.train_epoch over `steps` steps, epoch after epoch as fit would run them."""
    done, started = 0, time.perf_counter()
    while done < steps:
        loop.batch = 0
        loop.train_epoch()
        done += loop.batches_per_epoch
        loop.epoch += 1
    return done / (time.perf_counter() - started)


def plain_steps(model, optimizer, x_all, y_all, batch_size, steps):
    """The loop anyone would write: permutation, index, forward, loss, backward, step."""
    done, epoch, started = 0, 0, time.perf_counter()
    n = len(y_all)
    while done < steps:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
        for i in range(0, n, batch_size):
            index = order[i:i + batch_size]
            loss = F.cross_entropy(model(x_all[index]), y_all[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
        epoch += 1
    return done / (time.perf_counter() - started)


def bench_steps(case, steps, repeat):
    from runkit.loop import Loop, training_loop
    from runkit.optim import optimizer
    model_name, dataset_name, batch_size, _, target = CASES[case]
    config.parse([], [])
    with tempfile.TemporaryDirectory() as run_dir:
        loop = Loop(training_loop(model=model_name, dataset=dataset_name, batch_size=batch_size, n_epochs=10**6),
                    run_dir, log=lambda message: None)
        loop.start()
        data = loop.data
        torch.manual_seed(0)
        model = MODELS.get(model_name)(data.input_shape, data.n_classes)
        opt = optimizer(model.parameters())
        plain = lambda: plain_steps(model, opt, data.train_x, data.train_y, batch_size, steps)  # noqa: E731
        ours = lambda: runkit_steps(loop, steps)  # noqa: E731
        ours(), plain()  # warm up both
        report.row(f"{case} ({torch.get_num_threads()} threads)", *report.alternate(ours, plain, repeat),
                   unit="steps/s", min_ratio=target)


def train_first_step(root):
    """Seconds from spawning train on a new run folder under root to its first optimizer step."""
    gin_file = os.path.join(root, "first_step.gin")
    with open(gin_file, "w") as f:
        f.write("import first_step\ntraining_loop.callbacks = ['first_step']\n")
    env = dict(os.environ, PYTHONPATH=BENCH)
    argv = [sys.executable, os.path.join(REPO, "tools", "train"), tempfile.mkdtemp(dir=root),
            os.path.join(REPO, "configs", "digits_mlp.gin"), gin_file, "-b", "training_loop.n_epochs=1"]
    start = time.time()
    err = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True,
                         env=env).stderr
    return float(next(line for line in err.splitlines() if line.startswith(PREFIX))[len(PREFIX):]) - start


def until_printed(code, env=None):
    """Seconds from spawning `python -c code` to the time it prints (not to its exit, which is slower)."""
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout) - start


def bench_first_step(repeat):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "lib"))
    imports = {name: [] for name in IMPORTS}

    def plain_and_imports():  # the imports alone are timed beside the plain script, under the same load
        for name, code in IMPORTS.items():
            imports[name].append(until_printed(code + "; import time; print(time.time())", env))
        return until_printed(PLAIN_FIRST_STEP)

    with tempfile.TemporaryDirectory() as root:
        report.row("train: spawn to first step",
                   *report.alternate(lambda: train_first_step(root), plain_and_imports, repeat))
    bare = statistics.median(imports.pop("python -c pass"))
    print("  imports alone, median s over python -c pass:",
          ", ".join(f"{name} {statistics.median(times) - bare:.2f}" for name, times in imports.items()))


def main():
    quick = report.quick_flag(__doc__, "fewer steps and repeats: a smoke run")
    repeat = 2 if quick else 6
    report.header("train's loop: steps/s against a plain PyTorch loop; spawn to first step against a plain script")
    for case, (*_, steps, _) in CASES.items():
        bench_steps(case, steps // 5 if quick else steps, repeat)
    bench_first_step(repeat if quick else 5)


if __name__ == "__main__":
    main()
