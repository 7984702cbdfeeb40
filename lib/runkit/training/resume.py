"""What Lightning's checkpoints leave out and exact resume needs: the random generators' states, the
epoch's running `self.log` aggregates, and the plateau schedulers' step that Lightning takes after the
epoch's checkpoint was written. RunRecorder stores them in checkpoints (as tensors and plain lists, so
checkpoints load with torch's safe `weights_only` loader) and puts them back after a resume: the generators
and aggregates just before the first step, when nothing else can draw from the generators or reset the
aggregates any more; the plateau step at the start of training, before the next epoch begins.
"""
import random

import torch

from runkit.training import internals

REDUCTIONS = {"mean": torch.mean, "sum": torch.sum, "max": torch.max, "min": torch.min}


def rng_state():
    import numpy as np
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                        "gauss": gauss_next},
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    import numpy as np
    torch.set_rng_state(state["torch"].cpu())
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype("uint32"), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def logged_state(trainer):
    """The training epoch's running aggregates of `self.log(..., on_epoch=True)`, with how each was logged."""
    state = {}
    for key, metric in internals.epoch_results(trainer).items():
        meta = metric.meta
        if not metric.is_tensor or not meta.on_epoch or metric.has_reset or internals.synced_to_a_group(meta):
            continue
        state[key] = {
            "fx": meta.fx, "name": meta.name, "prog_bar": meta.prog_bar, "logger": meta.logger,
            "on_step": meta.on_step, "reduce_fx": meta.reduce_fx.__name__, "enable_graph": meta.enable_graph,
            "add_dataloader_idx": meta.add_dataloader_idx, "metric_attribute": meta.metric_attribute,
            "sync_dist": meta.sync.should, "rank_zero_only": meta.sync.rank_zero_only,
            "value": metric.value.detach().cpu().clone(),
            "size": metric.cumulated_batch_size.cpu().clone() if meta.is_mean_reduction else None,
        }
    return state


def logged_values(trainer):
    """The running sums of the epoch's training aggregates, as floats: a NaN in any shows in its sum."""
    return {metric.meta.name: float(metric.value) for metric in internals.epoch_results(trainer).values()
            if metric.is_tensor and metric.meta.on_epoch and not metric.has_reset}


def restore_logged(trainer, state):
    """Recreate each aggregate through Lightning's own `log` (so its metadata matches what the task's next
    `self.log` call brings), then set its running sums to the saved ones."""
    results = internals.epoch_results(trainer)
    internals.keep_epoch_aggregates(trainer)
    for key, saved in state.items():
        value = saved["value"].to(trainer.strategy.root_device)
        results.log(saved["fx"], saved["name"], value.new_zeros(()), prog_bar=saved["prog_bar"],
                    logger=saved["logger"], on_step=saved["on_step"], on_epoch=True,
                    reduce_fx=REDUCTIONS.get(saved["reduce_fx"], saved["reduce_fx"]),
                    enable_graph=saved["enable_graph"], add_dataloader_idx=saved["add_dataloader_idx"],
                    batch_size=1, sync_dist=saved["sync_dist"], sync_dist_fn=trainer.strategy.reduce,
                    metric_attribute=saved["metric_attribute"], rank_zero_only=saved["rank_zero_only"])
        metric = results[key]
        metric.value = value
        if saved["size"] is not None:
            metric.cumulated_batch_size = saved["size"].to(value.device)


def plateau_steps_due(trainer):
    """[{"index", "value"}] of the ReduceLROnPlateau schedulers Lightning steps at this epoch's end, after every
    epoch-end hook (so after the epoch's checkpoint), each with the metric it reads: a run resumed from this
    checkpoint takes those steps first (`take_plateau_steps`). Lightning steps no scheduler of a module that
    optimizes manually, and skips one whose metric was not logged."""
    if not trainer.lightning_module.automatic_optimization:
        return []
    due = []
    for index, config in enumerate(trainer.lr_scheduler_configs):
        if not config.reduce_on_plateau or config.interval != "epoch" or (trainer.current_epoch + 1) % config.frequency:
            continue
        value = trainer.callback_metrics.get(config.monitor)
        if value is not None:
            due.append({"index": index, "value": torch.as_tensor(value).detach().cpu().clone()})
    return due


def take_plateau_steps(trainer, due):
    """Step the plateau schedulers that the checkpoint's epoch end left due, as Lightning would have."""
    configs = trainer.lr_scheduler_configs
    for step in due:
        if step["index"] < len(configs):
            value = step["value"].to(trainer.strategy.root_device)
            trainer.lightning_module.lr_scheduler_step(configs[step["index"]].scheduler, value)
