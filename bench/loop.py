#!/usr/bin/env python3
"""How fast is train's loop? Steps/s of runkit's Loop against a plain PyTorch loop, same model, same data.

Both loops batch the same in-memory tensors (a fresh permutation per epoch, index, forward, backward,
step), in the same process, alternating, best of --repeats (on a shared machine the best
run is the one least disturbed by others; every run's figure goes to stderr). The Loop runs with its essential callbacks
(checkpoints every checkpoint.every_n_steps steps) but without per-epoch validation, which the plain loop
lacks. Prints one JSON line per case: {"case", "plain_steps_s", "runkit_steps_s", "ratio"}.

    .venv/bin/python bench/loop.py            # small CNN on random 32x32 images, tiny MLP on digits
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from runkit import config  # noqa: E402
from runkit.data import Dataset  # noqa: E402
from runkit.registry import DATASETS, MODELS  # noqa: E402


@DATASETS.register("bench_random32")
def random32(n=2048):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    return Dataset(x, y, x[:256], y[:256], n_classes=10)


CASES = {  # name: (model, dataset, batch size, bindings)
    "cnn_random32": ("cnn", "bench_random32", 128, []),
    "mlp_digits": ("mlp", "digits", 32, []),
}


def runkit_steps(loop, steps):
    """Time loop.train_epoch over `steps` steps, epoch after epoch as fit would run them."""
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
            x, y = x_all[index], y_all[index]
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
        epoch += 1
    return done / (time.perf_counter() - started)


def bench(case, steps, repeats):
    from runkit.loop import Loop, training_loop
    from runkit.optim import optimizer
    model_name, dataset_name, batch_size, bindings = CASES[case]
    config.parse([], bindings)
    with tempfile.TemporaryDirectory() as run_dir:
        settings = training_loop(model=model_name, dataset=dataset_name, batch_size=batch_size,
                                 n_epochs=10**6)
        loop = Loop(settings, run_dir, log=lambda message: None)
        loop.start()
        data = loop.data
        torch.manual_seed(0)
        model = MODELS.get(model_name)(data.input_shape, data.n_classes)
        opt = optimizer(model.parameters())
        runkit_steps(loop, steps // 5)  # warm up both
        plain_steps(model, opt, data.train_x, data.train_y, batch_size, steps // 5)
        plain, ours = [], []
        for repeat in range(repeats):  # alternate which goes first: a busy machine hurts both alike
            for which in (("plain", "runkit") if repeat % 2 == 0 else ("runkit", "plain")):
                if which == "plain":
                    plain.append(plain_steps(model, opt, data.train_x, data.train_y, batch_size, steps))
                else:
                    ours.append(runkit_steps(loop, steps))
    p, r = max(plain), max(ours)
    print(case, "plain", [round(v, 1) for v in plain], "runkit", [round(v, 1) for v in ours], file=sys.stderr)
    return {"case": case, "plain_steps_s": round(p, 1), "runkit_steps_s": round(r, 1), "ratio": round(r / p, 3),
            "threads": torch.get_num_threads(), "device": str(loop.fabric.device)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="default: all")
    parser.add_argument("--steps", type=int, default=0, help="steps per timing (default: 60 CNN, 2000 MLP)")
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    for case in args.case or CASES:
        steps = args.steps or (60 if case.startswith("cnn") else 2000)
        print(json.dumps(bench(case, steps, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
