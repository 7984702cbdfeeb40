"""python evaluate.py [--split=test] CHECKPOINT[:CHECKPOINT...] BINDINGS CONFIG...: each checkpoint's epoch and
its weights' accuracy and mean cross-entropy on a split (val unless --split says), as one JSON line, computed
here with plain torch from the run's config (not by train, nor Lightning's validation loop): what a test
compares with the history row the checkpoint claims to hold. Several checkpoints share one process (torch's
imports cost seconds)."""
import json
import os
import sys

import torch
import torch.nn.functional as F

from runkit.training import components, config, fit


def main(*argv):
    given = argv[0].startswith("--split=")
    split = argv[0].removeprefix("--split=") if given else "val"
    checkpoints, bindings, *configs = argv[given:]
    flat = config.parse(configs, [bindings], components.register)
    settings = fit.training_loop()
    task_class, data_class, _callbacks, _loggers = settings.components()
    data = fit.construct(data_class, settings.data, flat, {"seed": settings.seed})
    data.setup("fit")
    task = fit.construct(task_class, settings.task, flat, fit.vars_of(data))
    task.eval()
    x, y = data.splits[split]
    for checkpoint in checkpoints.split(os.pathsep):
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        task.load_state_dict(saved["state_dict"])
        with torch.no_grad():
            logits = task(x)
        print(json.dumps({"epoch": saved["epoch"], "global_step": saved["global_step"],
                          f"{split}_acc": (logits.argmax(1) == y).double().mean().item(),
                          f"{split}_loss": F.cross_entropy(logits, y).item()}))


if __name__ == "__main__":
    main(*sys.argv[1:])
