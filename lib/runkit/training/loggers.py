"""Loggers by name: `training_loop.loggers = ['tensorboard', 'csv']` (TensorBoard alone by default), or by
Lightning's class name (`'CSVLogger'`, `'TensorBoardLogger'`, `'MLFlowLogger'`, `'WandbLogger'`: the same
loggers, their parameters bound under the class name, `CSVLogger.flush_logs_every_n_steps = 10`).

A logger is a function of the run folder and the step the attempt resumes from. Each writes inside the run
folder unless bound elsewhere: tb/ for TensorBoard, csv/ for the CSV logger,
mlruns/ as a local MLflow file store (works offline; `mlflow.tracking_uri` points it at a server), wandb/
for Weights & Biases ('wandb', offline unless `wandb.offline = False`: runkit.training.wandb_logger). Extra
parameters bind under the name and go to Lightning's logger (`tensorboard.log_graph = True`).
"""
import math
import os

from runkit.rundir import runs
from runkit.training import lightning_package  # the run's: pytorch_lightning or lightning.pytorch
from runkit.training.registry import LOGGERS


@LOGGERS.register("tensorboard", denylist=["resume_step"])
def tensorboard(run_dir, resume_step=0, **kwargs):
    """purge_step: TensorBoard drops what a killed attempt logged after the checkpoint this one resumes from,
    so curves never fold back on themselves."""
    TensorBoardLogger = lightning_package.module("loggers").TensorBoardLogger
    return TensorBoardLogger(save_dir=run_dir, name=runs.TENSORBOARD, version="", default_hp_metric=False,
                             purge_step=resume_step, **kwargs)


@LOGGERS.register("csv", denylist=["resume_step"])
def csv(run_dir, resume_step=0, **kwargs):
    CSVLogger = lightning_package.module("loggers").CSVLogger
    return CSVLogger(save_dir=run_dir, name="csv", version="", **kwargs)


@LOGGERS.register("mlflow", denylist=["resume_step"])
def mlflow(run_dir, resume_step=0, experiment_name="runkit", tracking_uri=None, **kwargs):
    import mlflow  # noqa: F401 - Lightning's MLFlowLogger defers the import; fail here, before training
    MLFlowLogger = lightning_package.module("loggers").MLFlowLogger
    # MLflow 3 keeps its file store (offline, no database) behind this switch; a server URI needs none
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = tracking_uri or "file:" + os.path.join(os.path.abspath(run_dir), "mlruns")
    return MLFlowLogger(experiment_name=experiment_name, tracking_uri=uri, run_name=os.path.basename(run_dir),
                        **kwargs)


for _class_name, _function in (("TensorBoardLogger", tensorboard), ("CSVLogger", csv), ("MLFlowLogger", mlflow)):
    LOGGERS.register(_class_name, denylist=["resume_step"])(_function)


def record_hparams(loggers, bindings, metrics):
    """TensorBoard's HParams dashboard for a finished run: its bindings against its best, final and test
    metrics (best_val_acc, final_val_loss, test_acc...), written into tb/ with the run's other events, so
    `tensorboard --logdir` on a sweep's folder lists every run of it in the HParams tab."""
    TensorBoardLogger = lightning_package.module("loggers").TensorBoardLogger  # the run's package, either one
    values = {}
    for part in ("best", "final", "test"):
        for key, value in (metrics.get(part) or {}).items():
            if key not in runs.HISTORY_FIRST + runs.HISTORY_LAST and isinstance(value, (int, float)) \
                    and not isinstance(value, bool) and math.isfinite(value):
                values[key if part == "test" and key.startswith("test_") else f"{part}_{key}"] = float(value)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger) and values:
            logger.log_hyperparams(bindings, values)
            logger.finalize("success")  # fit closed the event file: this flushes the one just opened
        elif hasattr(logger, "record_summary"):  # W&B: config and summary
            logger.record_summary(bindings, values)


from runkit.training import wandb_logger  # noqa: E402,F401 - registers 'wandb' and 'WandbLogger'
