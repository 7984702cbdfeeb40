#!/usr/bin/env python3
"""How fast is train? Its steps/s against a bare pl.Trainer and a plain PyTorch loop, and its time to the
first step.

Steps/s, in this process, alternating, over the same in-memory data, without validation:
- runkit: `train`'s Trainer as runkit.training.fit builds it (kit defaults, RunRecorder with its checkpoints every
  checkpoint_every_n_steps, TensorBoard), the classification task, the data module cutting batches on the
  device;
- bare Trainer: `pl.Trainer(max_epochs=...)` with Lightning's defaults, a LightningModule that logs its loss
  with `self.log`, a DataLoader over a TensorDataset: what a user writes first;
- plain: a loop anyone would write (permutation, index, forward, backward, step).
Steps are timed from the first batch to the last (setup excluded) by a callback.
Targets: runkit >= 0.95 of plain PyTorch for a small CNN on 32x32 inputs; >= 1.5x the bare Trainer for the
tiny digits MLP.

Plain DataLoader: the small CNN on the image folder through a user's own LightningDataModule whose
train_dataloader is a plain `DataLoader(shuffle=True, num_workers=2)`: train's Trainer (which rebuilds that
loader so that it resumes exactly: runkit.training.loaders) against a bare pl.Trainer given the same data
module untouched, alternating in this process. Target: >= 0.95 of the bare Trainer's steps/s.

Main-process loader: in-memory tensors of MNIST's shape (12,800 x 1x28x28), batch 256, `num_workers=0` (the
shape of Lightning's autoencoder example), each batch a step of a small MLP: batches/s through the DataLoader as
runkit rebuilds it (runkit.training.loaders.rebuild, which seeds the global generators once a batch) against
the same DataLoader untouched, alternating epochs in this process. Target: >= 0.95.

Data wait: the small CNN on an image folder on disk (PNGs decoded and augmented by 2 DataLoader workers, as
configs/image_folder_cnn.gin does): the share of training time the step waits for its batch (from one
batch's end to the next batch's start, Lightning's own work included, so an upper bound). Target: < 10%.

First step: wall clock from spawning `train RUN configs/digits_mlp.gin` to its first optimizer step (seen
through bench/first_step.py, a callback gin imports into the real tool), against a plain PyTorch script.

    .venv/bin/python bench/loop.py [--quick] [--loaders]   # --loaders: only the two loader cases
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, "lib"))

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import report  # noqa: E402
from first_step import PREFIX  # noqa: E402
from runkit.data import TensorData  # noqa: E402
from runkit.training import config, fit  # noqa: E402
from runkit.training.registry import DATA, MODELS  # noqa: E402


@DATA.register("bench_random32")
class Random32(TensorData):
    input_shape, n_classes = (3, 32, 32), 10

    def load(self, n=2048):
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
        return {"train": (x, y), "val": (x[:256], y[:256])}


CASES = {  # name: (model, data, batch size, epochs per timing, target, what the target compares with)
    "cnn_random32": ("cnn", "bench_random32", 128, 2, 0.95, "plain"),
    "mlp_digits": ("mlp", "digits", 32, 30, 1.5, "bare"),
}


class StepTimer(pl.Callback):
    """Steps/s from the first batch's start to the last batch's end."""

    def on_train_batch_start(self, trainer, *args):
        if getattr(self, "start", None) is None:
            self.start, self.first = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer, *args):
        self.end, self.last = time.perf_counter(), trainer.global_step

    def rate(self):
        return (self.last - self.first + 1) / (self.end - self.start)


class DataWait(pl.Callback):
    """Seconds between a batch's end and the next batch's start (waiting for data), and in the steps."""

    def __init__(self):
        self.wait = self.step = 0.0
        self.ended = None

    def on_train_epoch_start(self, trainer, *args):
        self.ended = None  # the wait for an epoch's first batch includes starting the epoch: not counted

    def on_train_batch_start(self, trainer, *args):
        self.started = time.perf_counter()
        if self.ended is not None:
            self.wait += self.started - self.ended

    def on_train_batch_end(self, trainer, *args):
        self.ended = time.perf_counter()
        self.step += self.ended - self.started


def bench_data_wait(epochs, repeat):
    """The share of time waiting for batches from an on-disk image folder with 2 workers."""
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from pathlib import Path

    from image_folder import write_image_folder
    shares = []
    with tempfile.TemporaryDirectory() as root:
        images = write_image_folder(Path(root) / "images", classes=4, per_class=256, size=32)
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as run_dir:
                flat = config.parse([os.path.join(REPO, "configs", "image_folder_cnn.gin")],
                                    [f"image_folder.root='{images}'", f"training_loop.n_epochs={epochs}",
                                     "trainer.limit_val_batches=0"])
                job = fit.Job(fit.training_loop(), run_dir, flat, log=lambda message: None)
                timer = DataWait()
                job.trainer.callbacks.insert(0, timer)
                job.fit(None)
                shares.append(timer.wait / (timer.wait + timer.step))
    best, median = min(shares), statistics.median(shares)
    print(f"{'image_folder data wait':<30}{best:>12.1%}{median:>9.1%}  (share of step time; target < 10%: "
          f"{'PASS' if best < 0.10 else 'MISS'})", flush=True)


class PlainImages(pl.LightningDataModule):
    """The image folder through plain DataLoaders, as a project of one's own has it (no runkit base class)."""

    def __init__(self, root=None, batch_size=32):
        super().__init__()
        self.root, self.batch_size, self.n_classes, self.input_shape = root, batch_size, 4, (3, 32, 32)

    def setup(self, stage=None):
        from runkit.data.image_folder import ImageFolder
        self.sets = ImageFolder(root=self.root, image_size=32).datasets()

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.sets["train"], batch_size=self.batch_size, shuffle=True,
                                           num_workers=2, persistent_workers=True)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.sets["val"], batch_size=256)


DATA.register("bench_plain_images")(PlainImages)


def bench_plain_loader(epochs, repeat):
    """train's Trainer over a user's plain DataLoader (rebuilt by runkit) against a bare pl.Trainer over the
    same DataLoader untouched: the ratio of steps/s, alternating in one run."""
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from pathlib import Path

    from image_folder import write_image_folder
    cnn = {"n_filters": 16, "n_blocks": 2}
    with tempfile.TemporaryDirectory() as root:
        images = write_image_folder(Path(root) / "images", classes=4, per_class=256, size=32)

        def ours():
            with tempfile.TemporaryDirectory() as run_dir:
                flat = config.parse([], ["training_loop.data='bench_plain_images'", f"bench_plain_images.root='{images}'",
                                         "classification.model='cnn'", *(f"cnn.{k}={v}" for k, v in cnn.items()),
                                         f"training_loop.n_epochs={epochs}", "trainer.limit_val_batches=0",
                                         "optimizer.lr=0.05", "optimizer.momentum=0.9"])
                job = fit.Job(fit.training_loop(), run_dir, flat, log=lambda message: None)
                timer = StepTimer()
                job.trainer.callbacks.insert(0, timer)
                job.fit(None)
                return timer.rate()

        def bare():
            torch.manual_seed(0)
            module = BareModule(MODELS.get("cnn")((3, 32, 32), 4, **cnn))
            timer = StepTimer()
            with tempfile.TemporaryDirectory() as run_dir:
                trainer = pl.Trainer(max_epochs=epochs, limit_val_batches=0, default_root_dir=run_dir,
                                     callbacks=[timer])
                trainer.fit(module, datamodule=PlainImages(images))
            return timer.rate()

        ours(), bare()  # warm up both
        report.row("plain DataLoader vs bare", *report.alternate(ours, bare, repeat), unit="steps/s",
                   min_ratio=0.95)


def bench_main_process_loader(epochs, repeat):
    """Batches/s of a training loop over a main-process DataLoader of tensors, rebuilt by runkit against
    untouched, alternating."""
    from runkit.training.loaders import rebuild
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.rand(12800, 1, 28, 28, generator=g),
                                          torch.randint(0, 10, (12800,), generator=g))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

    def loop(loader):
        def run():
            done, started = 0, time.perf_counter()
            for epoch in range(epochs):
                if hasattr(loader, "sampler") and hasattr(loader.sampler, "set_epoch"):
                    loader.sampler.set_epoch(epoch)
                for x, y in loader:
                    loss = F.cross_entropy(model(x), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    done += 1
            return done / (time.perf_counter() - started)
        return run

    untouched = torch.utils.data.DataLoader(data, batch_size=256, shuffle=True)
    rebuilt, reason = rebuild(torch.utils.data.DataLoader(data, batch_size=256, shuffle=True), seed=0)
    assert reason is None, reason
    ours, anchor = loop(rebuilt), loop(untouched)
    ours(), anchor()  # warm up both
    report.row("main-process loader vs untouched", *report.alternate(ours, anchor, repeat), unit="batches/s",
               min_ratio=0.95)


class BareModule(pl.LightningModule):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def runkit_steps(case, epochs):
    model, data, batch_size, *_ = CASES[case]
    with tempfile.TemporaryDirectory() as run_dir:
        flat = config.parse([], [f"training_loop.data='{data}'", f"classification.model='{model}'",
                                 f"{data}.batch_size={batch_size}", f"training_loop.n_epochs={epochs}",
                                 "trainer.limit_val_batches=0", "optimizer.lr=0.05", "optimizer.momentum=0.9"])
        job = fit.Job(fit.training_loop(), run_dir, flat, log=lambda message: None)
        timer = StepTimer()
        job.trainer.callbacks.insert(0, timer)
        job.fit(None)
        return timer.rate()


def bare_steps(case, epochs):
    model, data, batch_size, *_ = CASES[case]
    x, y = DATA.get(data)().load()["train"]
    torch.manual_seed(0)
    module = BareModule(MODELS.get(model)(tuple(x.shape[1:]), 10))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as root:
        trainer = pl.Trainer(max_epochs=epochs, limit_val_batches=0, default_root_dir=root, callbacks=[timer])
        trainer.fit(module, loader)
    return timer.rate()


def plain_steps(case, epochs):
    """The loop anyone would write: permutation, index, forward, loss, backward, step."""
    model_name, data, batch_size, *_ = CASES[case]
    x_all, y_all = DATA.get(data)().load()["train"]
    torch.manual_seed(0)
    model = MODELS.get(model_name)(tuple(x_all.shape[1:]), 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    n, done = len(y_all), 0
    started = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
        for i in range(0, n, batch_size):
            index = order[i:i + batch_size]
            loss = F.cross_entropy(model(x_all[index]), y_all[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
    return done / (time.perf_counter() - started)


def bench_steps(case, epochs, repeat):
    *_, target, anchor_name = CASES[case]
    anchors = {"plain": plain_steps, "bare": bare_steps}
    ours = lambda: runkit_steps(case, epochs)  # noqa: E731
    anchor = lambda: anchors[anchor_name](case, epochs)  # noqa: E731
    other = lambda: anchors["bare" if anchor_name == "plain" else "plain"](case, epochs)  # noqa: E731
    ours(), anchor()  # warm up both
    figures, anchor_figures = report.alternate(ours, anchor, repeat)
    threads = torch.get_num_threads()
    report.row(f"{case} vs {anchor_name} ({threads} thr)", figures, anchor_figures, unit="steps/s",
               min_ratio=target)
    report.row(f"{case} vs {'bare' if anchor_name == 'plain' else 'plain'}", figures,
               [other() for _ in range(max(1, repeat // 2))], unit="steps/s")


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
    "+ runkit's components (train's)": "import sklearn.datasets, runkit.training.config; runkit.training.config.register_components()",
}


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats: a smoke run")
    parser.add_argument("--loaders", action="store_true", help="only the rebuilt DataLoaders against untouched")
    args = parser.parse_args()
    quick, repeat = args.quick, 2 if args.quick else 6
    report.header("train's loop: steps/s against a plain PyTorch loop; spawn to first step against a plain script")
    if args.loaders:
        bench_main_process_loader(1 if quick else 2, 4 if quick else 12)
        bench_plain_loader(1 if quick else 3, repeat)
        return
    for case, (_, _, _, epochs, _, _) in CASES.items():
        bench_steps(case, max(1, epochs // 5) if quick else epochs, repeat)
    bench_main_process_loader(1 if quick else 2, 4 if quick else 12)
    bench_plain_loader(1 if quick else 3, repeat)
    bench_data_wait(1 if quick else 3, repeat)
    bench_first_step(repeat if quick else 5)


if __name__ == "__main__":
    main()
