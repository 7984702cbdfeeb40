"""`train NEW_RUN CONFIG.gin... --from RUN_DIR[/checkpoints/FILE]`: a run that starts from another run's
checkpoint (best.ckpt by default) and is otherwise a run of its own, with its own config, bindings and folder.

The source matters only for the first start: the new run's weights (and, with `--from-state`, its
optimizers' and schedulers' state) are taken from it before the first step; from then on the new run
resumes from its own checkpoints, like any other. meta.json's `source` records what was loaded (folder,
checkpoint, sha256 digest, the source run's bindings); a rerun naming another source is refused like a
changed binding. A source that is missing, not sound (its digest does not match) or whose weights do not fit
the new config's model is bad input, found before anything is written.
"""
import hashlib
import os

from runkit.errors import BadInput
from runkit.rundir import checkpoints, runs
from runkit.training import lightning_package
from runkit.training.errors import ConfigError


class BadSource(BadInput, ValueError):
    """A --from source that cannot be started from; the message says why and what to do."""


def checkpoint_of(text):
    """The checkpoint a --from argument names: a .ckpt file as given, or RUN_DIR/checkpoints/best.ckpt."""
    path = os.path.abspath(text)
    return path if path.endswith(".ckpt") else runs.best_checkpoint_path(path)


def wanted(text, state):
    """What meta.json's `source` must say for this command (None without --from): {"checkpoint", "state"}."""
    return None if text is None else {"checkpoint": checkpoint_of(text), "state": bool(state)}


def check_same(run_dir, text, state):
    """A run that has started names the same source on every rerun (or none on every rerun); ConfigError
    otherwise, as for a changed binding."""
    if not os.path.exists(runs.path(run_dir, runs.BINDINGS)):
        return  # not started yet: nothing recorded to compare with
    recorded = (runs.read_json(run_dir, runs.META) or {}).get("source")
    before = None if not recorded else {"checkpoint": recorded.get("checkpoint"), "state": bool(recorded.get("state"))}
    now = wanted(text, state)
    if before != now:
        raise ConfigError(f"{run_dir} was started {_show(before)}, this command is {_show(now)}; rerun it with "
                          "the same --from, use another folder, or --restart to start it over")


def _show(source):
    if source is None:
        return "without --from"
    return f"with --from {source['checkpoint']}" + (" --from-state" if source["state"] else "")


def resolve(text, state):
    """The source's record for meta.json, checked sound; BadSource if it is missing or damaged."""
    path = checkpoint_of(text)
    if not os.path.isfile(path):
        raise BadSource(f"--from {text}: {path} does not exist; give a run folder that has its best "
                        "checkpoint, or a checkpoint file")
    why = checkpoints.damage(path)
    if why is not None:
        raise BadSource(f"--from {text}: {path} is not sound ({why}); start from another checkpoint of that "
                        "run (checkpoints/last.ckpt, prev.ckpt) or retrain it")
    folder = os.path.dirname(os.path.dirname(path))
    bindings = runs.read_json(folder, runs.BINDINGS) if os.path.basename(os.path.dirname(path)) == runs.CHECKPOINTS \
        else None
    return {"run_dir": folder if bindings is not None else None, "checkpoint": path, "sha256": _digest(path),
            "bindings": bindings, "state": bool(state)}


def _digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def start_from(record, task, trainer):
    """Load the source's weights into the task now (ConfigError naming the first key that does not fit) and,
    for --from-state, its optimizers' and schedulers' state once the Trainer has built them."""
    import torch
    try:
        saved = torch.load(record["checkpoint"], map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - whatever torch says of a file that is not a checkpoint it can load
        raise BadSource(f"--from {record['checkpoint']}: cannot be loaded ({type(e).__name__}: "
                        f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None
    weights = saved.get("state_dict")
    if not isinstance(weights, dict):
        raise BadSource(f"--from {record['checkpoint']}: not a Lightning checkpoint (it has no state_dict)")
    mismatch = first_mismatch(weights, task.state_dict())
    if mismatch:
        raise ConfigError(f"--from {record['checkpoint']}: its model does not fit this config's: {mismatch}; "
                          "bind the model as the source run did (its bindings.json)")
    task.load_state_dict(weights)
    if record["state"]:
        trainer.callbacks.insert(0, _state_loader(saved))


def first_mismatch(saved, model):
    """'KEY: ...' for the first parameter or buffer (in the new model's order, then the source's) that is
    missing from one side or has another shape; None when every key fits."""
    for key, value in model.items():
        if key not in saved:
            return f"{key} is not in the source"
        if tuple(saved[key].shape) != tuple(value.shape):
            return f"{key} has shape {list(saved[key].shape)} in the source, {list(value.shape)} here"
    for key in saved:
        if key not in model:
            return f"{key} of the source is not in this model"
    return None


def _state_loader(saved):
    """A callback that, before the first step, puts the source's optimizer and scheduler state into the
    Trainer's; each parameter group keeps the new config's settings (lr, momentum...), so a changed rate
    takes effect, and each scheduler its base rates."""
    from pytorch_lightning import Callback

    class LoadSourceState(Callback):
        def on_train_start(self, trainer, pl_module):
            optimizers, schedulers = saved.get("optimizer_states") or [], saved.get("lr_schedulers") or []
            if len(optimizers) != len(trainer.optimizers) or len(schedulers) != len(trainer.lr_scheduler_configs):
                raise ConfigError(f"--from-state: the source has {len(optimizers)} optimizer(s) and "
                                  f"{len(schedulers)} scheduler(s), this run {len(trainer.optimizers)} and "
                                  f"{len(trainer.lr_scheduler_configs)}; drop --from-state")
            for optimizer, state in zip(trainer.optimizers, optimizers, strict=True):
                settings = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
                optimizer.load_state_dict(state)
                for group, own in zip(optimizer.param_groups, settings, strict=True):
                    group.update(own)
            for config, state in zip(trainer.lr_scheduler_configs, schedulers, strict=True):
                base = getattr(config.scheduler, "base_lrs", None)
                config.scheduler.load_state_dict(state)
                if base is not None:
                    config.scheduler.base_lrs = base
    return lightning_package.adapt(LoadSourceState)()  # a Callback of the run's package
