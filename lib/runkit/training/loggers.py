"""Loggers by name: `training_loop.loggers = ['tensorboard', 'csv']` (TensorBoard alone by default).

A logger is a function of the run folder and the step the attempt resumes from. Each writes inside the run
folder unless bound elsewhere: tb/ for TensorBoard, csv/ for the CSV logger,
mlruns/ as a local MLflow file store (works offline; `mlflow.tracking_uri` points it at a server). Extra
parameters bind under the name and go to Lightning's logger (`tensorboard.log_graph = True`).
"""
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
