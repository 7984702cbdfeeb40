"""train(run_dir, configs, bindings) -> final metrics: one resumable run into one run folder.

What happens, in order: parse the config (bad config: ConfigError, nothing touched); compare with the
folder's stored bindings (a change other than more epochs: ConfigError); build data, model and optimizer;
take the run's lock; write the start files; resume from the last checkpoint; train; write metrics.json and,
last, FINISHED. A failure writes error.json and leaves the folder resumable.
"""
import logging
import os
import shlex
import signal
import sys
import threading
import time
import traceback

from runkit import config, runs

class RunBusy(Exception):
    """Another process holds the run's lock."""


class Preempted(Exception):
    """A signal (SLURM preemption, SIGTERM) stopped the run after a checkpoint; rerunning continues it."""

    def __init__(self, signum):
        super().__init__(f"stopped by {signal.Signals(signum).name} after writing a checkpoint")
        self.signum = signum


class Log:
    """Messages to stderr and, once the run folder is ours, to train.log (appended across attempts)."""

    def __init__(self):
        self.file = None

    def __call__(self, message):
        print(message, file=sys.stderr, flush=True)
        if self.file:
            self.file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")
            self.file.flush()

    def open(self, run_dir):
        self.file = open(runs.path(run_dir, runs.LOG), "a", encoding="utf-8")
        handler = _Forward(self)
        logging.captureWarnings(True)  # Lightning's and torch's warnings join our messages, never stdout
        for name in ("lightning_fabric", "lightning", "pytorch_lightning", "py.warnings"):
            logger = logging.getLogger(name)
            logger.handlers[:] = [handler]
            logger.propagate = False
        return self

    def close(self):
        if self.file:
            self.file.close()
            self.file = None


class _Forward(logging.Handler):
    def __init__(self, log):
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record):
        self.log(record.getMessage().strip())


def train(run_dir, configs, bindings=(), restart=False, command=None):
    """Train (or continue) the run in run_dir; returns {"final": {...}, "best": {...}} (None on the extra
    processes of a distributed run, which leave the run folder to rank 0).

    Raises config.ConfigError / registry.UnknownName / data.DataMissing for bad input (nothing touched),
    RunBusy if another process owns the run, Preempted after a signal, any other exception for a failed
    attempt (error.json written).
    """
    flat = config.parse(configs, bindings)  # checks files and -b syntax before importing torch
    from runkit import loop as loop_module
    settings = loop_module.training_loop()
    try:
        settings.components()
    except ValueError as e:
        raise config.ConfigError(str(e)) from None
    if not restart and _already_done(run_dir, flat, settings.n_epochs):
        return runs.read_json(run_dir, runs.METRICS)
    if is_rank_zero() and _held_by_another(run_dir):  # say so before spending time on loading the data
        raise RunBusy(f"run is held by another process: {run_dir}")

    log = Log()
    try:
        loop = loop_module.Loop(settings, run_dir, log)  # data, model, optimizer: still nothing written
    except (TypeError, ValueError) as e:  # a component refused the parameters bound to it
        raise config.ConfigError("; ".join(line.strip() for line in str(e).strip().splitlines())) from e
    if not is_rank_zero():
        loop.start()  # joins rank 0's process group; only rank 0 writes the run folder
        loop.fit()
        return None
    inherited = runs.inherited_lock(run_dir) if os.path.isdir(run_dir) else None
    lock = inherited if inherited is not None else runs.try_lock(run_dir)
    if lock is None:
        raise RunBusy(f"run is held by another process: {run_dir}")
    try:
        if restart:
            runs.clear(run_dir)
        log.open(run_dir)
        return _attempt(loop, run_dir, flat, command, log)
    finally:
        log.close()
        if inherited is None:
            os.close(lock)  # the Python API may train the same run again in this process


def _held_by_another(run_dir):
    lock_file = runs.path(run_dir, runs.LOCK)
    return os.path.exists(lock_file) and runs.inherited_lock(run_dir) is None and runs.is_locked(run_dir)


def is_rank_zero():
    """False in the extra processes of a distributed run (started by Fabric's launcher, torchrun or srun)."""
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def _already_done(run_dir, flat, n_epochs):
    """True if the run is finished as asked; ConfigError if its stored bindings differ (but for n_epochs)."""
    stored = runs.read_json(run_dir, runs.BINDINGS) if os.path.isdir(run_dir) else None
    if stored is None:
        return False
    changed = config.differences(stored, flat)
    if changed:
        raise config.ConfigError(f"{run_dir} was run with other bindings ({'; '.join(changed)}); "
                                 f"use another folder, or --restart to start it over")
    done = runs.read_history(run_dir)
    if done and done[-1]["epoch"] > n_epochs:
        raise config.ConfigError(f"{run_dir} already trained {done[-1]['epoch']} epochs, more than "
                                 f"training_loop.n_epochs={n_epochs}; use --restart to start it over")
    return runs.status(run_dir) == "finished" and bool(done) and done[-1]["epoch"] == n_epochs


def _attempt(loop, run_dir, flat, command, log):
    runs.remove(run_dir, runs.ERROR, runs.FINISHED)
    runs.write_json(run_dir, runs.BINDINGS, flat)
    runs.write_atomic(runs.path(run_dir, runs.COMMAND), (command or shlex.join(sys.argv)) + "\n")
    stop = _stop_on_signals(loop)
    try:
        loop.start()
        import gin
        runs.write_atomic(runs.path(run_dir, runs.CONFIG), gin.operative_config_str())
        finished = loop.fit()
    except Exception as e:
        runs.write_json(run_dir, runs.ERROR, {"error": str(e), "type": type(e).__name__,
                                              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                              "traceback": traceback.format_exc()})
        raise
    finally:
        stop()
    if not finished:
        from runkit import preempt
        preempt.requeue(log)
        raise Preempted(loop.stop_signal)
    metrics = summarize(loop.history)
    runs.write_json(run_dir, runs.METRICS, metrics)
    runs.mark_finished(run_dir)
    return metrics


def summarize(history):
    """metrics.json: the last history row, and the best validation figures."""
    best = max(history, key=lambda row: row["val_acc"])
    return {"final": history[-1],
            "best": {"val_acc": best["val_acc"], "val_loss": min(row["val_loss"] for row in history),
                     "epoch": best["epoch"]}}


def _stop_on_signals(loop):
    """SIGUSR1 (SLURM's warning before preemption) and SIGTERM stop the loop after its current step."""
    def handler(signum, _frame):
        loop.stop_signal = signum

    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # Python delivers signals to the main thread only
    previous = {s: signal.signal(s, handler) for s in (signal.SIGUSR1, signal.SIGTERM)}
    return lambda: [signal.signal(s, h) for s, h in previous.items()]
