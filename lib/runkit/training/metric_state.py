"""The running state of every torchmetrics Metric in a run (the LightningModule's, a MetricCollection's, a
callback's): a Metric registers its accumulators as non-persistent, so Lightning's checkpoints leave them
out, and a run resumed mid-epoch would compute its epoch's `train/acc` from the batches after the resume,
and a `MaxMetric` of the best validation score would start over. RunRecorder saves them with every
checkpoint (tensors, lists of tensors and counts, so the safe `weights_only` loader takes them) and puts
them back after the fit's start hooks (runkit.training.recorder says when).
"""
import torch

from runkit.training import internals


def metrics_of(trainer, pl_module):
    """{name: Metric} of the module (by module path) and of each callback (by its state key and attribute)."""
    import torchmetrics
    found = {f"module.{name}": m for name, m in pl_module.named_modules() if isinstance(m, torchmetrics.Metric)}
    for callback in trainer.callbacks:
        for attribute, value in vars(callback).items():
            if isinstance(value, torch.nn.Module):
                for name, m in value.named_modules():
                    if isinstance(m, torchmetrics.Metric):
                        found[f"callback.{callback.state_key}.{attribute}.{name}".rstrip(".")] = m
    return found


def save(trainer, pl_module, reset=()):
    """{name: {"state": {state name: tensor or [tensors]}, "count": updates}}, on the CPU. The Metrics in
    `reset` are saved as Lightning leaves them next: reset (those the training epoch logged as objects, when
    the checkpoint is the epoch's last)."""
    reset = {id(m) for m in reset}
    saved = {}
    for name, metric in metrics_of(trainer, pl_module).items():
        if id(metric) in reset:
            saved[name] = {"state": None, "count": 0}
            continue
        state = {}
        for key, value in metric.metric_state.items():
            state[key] = [v.detach().cpu().clone() for v in value] if isinstance(value, list) \
                else value.detach().cpu().clone()
        saved[name] = {"state": state, "count": metric.update_count}
    return saved


def restore(trainer, pl_module, saved):
    """Put the saved states back into the Metrics of the same names (a Metric saved as reset is reset)."""
    metrics = metrics_of(trainer, pl_module)
    for name, entry in saved.items():
        metric = metrics.get(name)
        if metric is None:
            continue
        if entry["state"] is None:
            metric.reset()
            continue
        for key, value in entry["state"].items():
            device = metric.device
            setattr(metric, key, [v.to(device) for v in value] if isinstance(value, list) else value.to(device))
        internals.set_update_count(metric, entry["count"])
