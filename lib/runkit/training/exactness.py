"""What keeps a run from resuming exactly that the run itself can see (docs/own-project.md lists what
cannot be exact). RunRecorder says each once an attempt: a `train: resumes approximately: ...` line in
train.log and an entry of `not_exact` in meta.json.

- State outside the checkpoint: tensors on the module's plain attributes, or one level inside a plain object
  it holds (a replay buffer: a list of tensors on `self.sampler`), that change during training, of a module
  that does not save state of its own in `on_save_checkpoint`.
- A run continued to more epochs whose restored scheduler is sized from the old length (a OneCycleLR's
  `total_steps`, a CosineAnnealingLR's `T_max` equal to the old epochs or steps), or whose callbacks add
  epochs sized from `max_epochs` (StochasticWeightAveraging's BatchNorm epoch).
"""
import torch

from runkit.training import lightning_package

LENGTHS = ("total_steps", "T_max", "total_iters")  # scheduler state that holds the schedule's length


def _tensors(value):
    """The tensors a plain attribute value holds (itself, or a list, tuple or dict of them)."""
    if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return [v for v in items if isinstance(v, torch.Tensor)]


def _plain_objects(value):
    return not isinstance(value, (torch.Tensor, torch.nn.Module, type)) and hasattr(value, "__dict__") \
        and not callable(value) and type(value).__module__.split(".")[0] not in ("torch", "pytorch_lightning",
                                                                                 "lightning", "torchmetrics")


def held_outside(pl_module):
    """{"Class.attribute[.inner]": tensors} of tensors the module holds outside its state_dict (public names)."""
    if lightning_package.defines(pl_module, "on_save_checkpoint"):
        return {}
    name = type(pl_module).__name__
    found = {}
    for attribute, value in vars(pl_module).items():
        if attribute.startswith("_"):
            continue
        if _tensors(value):
            found[f"{name}.{attribute}"] = _tensors(value)
        elif _plain_objects(value):
            for inner, held in vars(value).items():
                if not inner.startswith("_") and _tensors(held):
                    found[f"{name}.{attribute}.{inner}"] = _tensors(held)
    return found


def fingerprint(tensors):
    return [(tuple(t.shape), float(t.detach().double().sum())) for t in tensors]


def changed_outside(pl_module, before):
    """Lines for what `held_outside` found that changed since `before` ({name: fingerprint})."""
    lines = []
    for name, tensors in held_outside(pl_module).items():
        if before.get(name) != fingerprint(tensors):
            what = f"a list of {len(tensors)} tensors" if len(tensors) > 1 else "a tensor"
            lines.append(f"{name} ({what}) changes during training and no checkpoint holds it: register it as a "
                         "buffer, or save it in on_save_checkpoint")
    return lines


def continued_schedules(trainer, old_epochs, old_steps, n_epochs, epochs_added):
    """Lines for a run continued from old_epochs to n_epochs whose schedule cannot follow."""
    lines = []
    for config in trainer.lr_scheduler_configs:
        state = config.scheduler.state_dict()
        if any(state.get(key) in (old_epochs, old_steps) for key in LENGTHS):
            lines.append(f"continued from {old_epochs} to {n_epochs} epochs: {type(config.scheduler).__name__} "
                         f"was sized for {old_epochs} epochs and is restored as it was")
    if epochs_added:
        lines.append(f"continued from {old_epochs} to {n_epochs} epochs: a callback adds {epochs_added} epoch(s) "
                     "sized from max_epochs (StochasticWeightAveraging), which the first run already took")
    return lines
