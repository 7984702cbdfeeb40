"""Which way a metric is better, from its name: the one table every tool reads (train's `training_loop.mode`
when neither a binding nor the task says, plot's and report's goal, halving's and propose's ranking of runs
whose metrics.json names no mode). docs/run-folder.md#metric-names writes the rule down.

A name is matched on its last component after `/` or `_` (`val/acc`, `val_f1`, `train_loss`), Lightning's
`_epoch`/`_step` suffix and a `_best` suffix (torchmetrics' MaxMetric of a metric) set aside.
"""
from __future__ import annotations

import re

HIGHER = frozenset({"acc", "accuracy", "f1", "fbeta", "auroc", "auc", "auprc", "ap", "iou", "jaccard", "dice",
                    "map", "precision", "recall", "sensitivity", "specificity", "r2", "top1", "top5", "bleu",
                    "rouge", "psnr", "ssim", "ndcg", "mrr", "reward", "return", "kappa", "mcc"})
LOWER = frozenset({"loss", "err", "error", "mse", "mae", "rmse", "mape", "nll", "perplexity", "ppl", "cer",
                   "wer", "bpd", "kl", "fid", "distance"})
FRACTIONS = frozenset({"acc", "accuracy", "f1", "auroc", "auc", "iou", "dice", "precision", "recall"})
QUALIFIERS = ("epoch", "step", "best")  # what a name may end in after the metric's own word


def metric_word(name: object) -> str:
    """The word of a metric name the table is matched on: 'val/acc' -> 'acc', 'best_val_loss' -> 'loss'."""
    parts = [p for p in re.split(r"[/_]", str(name).lower()) if p]
    while len(parts) > 1 and parts[-1] in QUALIFIERS:
        parts.pop()
    return parts[-1] if parts else ""


def mode_of(name: object) -> str | None:
    """'max' when higher is better, 'min' when lower is, None when the table does not know the name."""
    word = metric_word(name)
    return "max" if word in HIGHER else "min" if word in LOWER else None


def is_fraction(name: object) -> bool:
    """A metric the table knows as a fraction of 1 (an accuracy, an F1 score): bands drawn around it stay in [0, 1]."""
    return metric_word(name) in FRACTIONS
