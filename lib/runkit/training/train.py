"""train(run_dir, configs, bindings) -> final metrics: one resumable run into one run folder.

What happens, in order: parse the config (bad config: ConfigError, nothing touched); compare with the
folder's stored bindings (a change other than more epochs: attempt.OtherRequest); build the data module, task and
Trainer (runkit.training.fit); then, inside the run's attempt (runkit.rundir.attempt: the run adopted or
claimed, its start files, its one ending), fit with Lightning's Trainer from the newest sound checkpoint and
finish (metrics.json, then FINISHED). A failure writes error.json and leaves the folder resumable.
"""
import logging
import os
import shlex
import signal
import sys
import traceback

from runkit import cli, timestamps
from runkit.rundir.attempt import Attempt, RunBusy
from runkit.sweeps import changes
from runkit.sweeps.slurm import client
from runkit.training import components, config, source, stopping
from runkit.training.errors import ConfigError


class Log:
    """Messages to stderr and, once the run folder is ours, to train.log (appended across attempts)."""

    def __init__(self):
        self.file = None

    def __call__(self, message):
        print(message, file=sys.stderr, flush=True)
        if self.file:
            self.file.write(f"{timestamps.now_line()} {message}\n")
            self.file.flush()

    def open(self, file):
        """From now on, messages are appended to file too (the run's train.log: Attempt.open_log)."""
        self.file = file
        return self

    def capture(self):
        """From now on, Lightning's log records and Python's warnings come here, never to stdout."""
        handler = _Forward(self)
        logging.captureWarnings(True)  # Lightning's and torch's warnings join our messages, never stdout
        # each package's own logger has a stderr handler and does not propagate; once lightning.pytorch is imported
        # (a config's module, a callback), even a pytorch_lightning Trainer logs through lightning.pytorch's
        for name in ("lightning_fabric", "lightning", "lightning.fabric", "lightning.pytorch", "pytorch_lightning",
                     "py.warnings"):
            logger = logging.getLogger(name)
            logger.handlers[:] = [handler]
            logger.propagate = False
        return self

    def close(self):
        if self.file:
            self.file.close()
            self.file = None


class _Forward(logging.Handler):
    """Lightning's and Python's warnings to stderr and train.log; its information (devices, ...) to train.log."""

    def __init__(self, log):
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record):
        message = record.getMessage().strip()
        if any(noise in message for noise in NOISE):
            return
        if record.levelno >= logging.WARNING:
            self.log(message)
        elif self.log.file:
            self.log.file.write(f"{timestamps.now_line()} {message}\n")


# Lightning's messages that say nothing about the run: an advertisement, and hints that do not apply
NOISE = ("Tip: For seamless cloud logging", "`srun` command is available", "is deprecated, use `isinstance",
         "smaller than the logging interval", "Loading `train_dataloader` to estimate")


def train(run_dir, configs, bindings=(), restart=False, command=None, start_from=None, from_state=False):
    """Train (or continue) the run in run_dir; returns {"monitor", "mode", "final", "best"[, "test"]} (None on
    the extra processes of a distributed run, which leave the run folder to rank 0).

    start_from: another run's folder (its checkpoints/best.ckpt) or a checkpoint file, whose weights (and
    with from_state, optimizer and scheduler state) the run starts from on its first start
    (runkit.training.source).

    Raises ConfigError / registry.UnknownName / data.DataMissing / attempt.OtherRequest for bad input (nothing
    touched), RunBusy if another process owns the run, stopping.Stopped after a stop signal, any other
    exception for a failed attempt (error.json written).
    """
    flat = config.parse(configs, bindings, components.register)  # checks files and -b syntax before importing torch
    attempt = Attempt(run_dir)  # NotARunFolder: a file, a folder of the user's or of runs
    from runkit.training import fit
    settings = fit.training_loop()
    try:
        settings.components()
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if not restart:
        source.check_same(run_dir, start_from, from_state)
        done = attempt.done(settings.n_epochs, lambda stored: changes.differences(stored, flat, changes.RESUMABLE))
        if done is not None:
            return done
    if is_rank_zero():
        attempt.check_free()  # say so before spending time on loading the data
    fresh = restart or attempt.resume_point()[0] is None  # NoSoundCheckpoint, before the data loads
    origin = source.resolve(start_from, from_state) if start_from is not None and fresh else None

    _same_threads(attempt)
    stopping.children_die_with_this_process()  # any loader's workers, the user's own: none outlives the run
    log = Log().capture()
    try:
        job = fit.Job(settings, run_dir, flat, log)  # data, task, trainer: still nothing written
    except (TypeError, ValueError) as e:  # a component refused the parameters bound to it
        raise ConfigError(cli.without_addresses("; ".join(line.strip() for line in str(e).strip().splitlines()))) from e
    if origin is not None:
        source.start_from(origin, job.task, job.trainer)  # a model that does not fit: ConfigError, nothing written
    from runkit.training import lightning_package, world
    job.trainer.callbacks.append(lightning_package.adapt(world.WorldSize)(run_dir, log))  # resumed on another world size: approximate
    if not is_rank_zero():
        stopping.die_with_parent()  # started by rank 0 (or srun): never left behind by a killed rank 0
        job.fit(attempt.resume_point()[0])  # joins rank 0's group; only rank 0 writes the folder
        if job.test:  # rank 0's test of the best checkpoint is a collective too: every process takes part
            job.test_best(attempt.best_checkpoint())
        return None
    with attempt:  # the run adopted (from its runner or launcher) or claimed; RunBusy if another holds it
        try:
            if restart:
                attempt.restart()
            resume_from, why = attempt.resume_point()  # NoSoundCheckpoint: nothing written
            if resume_from is not None and origin is not None:
                raise RunBusy(f"run {run_dir} wrote its first checkpoint meanwhile: rerun to resume it")
            log.open(attempt.open_log())
            if why:
                log(f"train: {why}")
            return _attempt(job, attempt, flat, command, log, resume_from, origin)
        finally:
            log.close()


def _same_threads(attempt):
    """Every attempt computes with the torch thread count of the first (meta.json's torch_threads): sums over
    threads round differently with another count, so a run started under `runbatch -j 2` (one thread a
    job) and resumed by hand (two) would otherwise end with other last digits."""
    threads = attempt.first_threads()
    if threads:
        import torch
        torch.set_num_threads(threads)


def is_rank_zero():
    """False in the extra processes of a distributed run (started by Lightning's launcher, torchrun or srun)."""
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def _attempt(job, attempt, flat, command, log, resume_from, origin=None):
    """One attempt, its one ending recorded by the attempt (runkit.rundir.attempt), as runners record theirs.
    A failure before the first step of a run starting afresh is bad config (a rerun would fail the same
    way): the attempt is undone (Attempt.undo), and it raises ConfigError."""
    attempt.begin()  # a run its runner holds was begun by it, and is beaten by it
    if origin is not None:  # before bindings.json: a rerun compares its --from with this record
        from runkit.training import metadata
        metadata.update(attempt.run_dir, source=origin)
        log(f"train: starting from {origin['checkpoint']} (sha256 {origin['sha256'][:12]}...)"
            + (", its optimizer and scheduler state too" if origin["state"] else ""))
    attempt.record_request(flat, command or shlex.join(sys.argv))
    try:
        try:
            job.fit(resume_from)
        except SystemExit as e:  # Lightning's answer to SIGTERM outside a step (SIGTERMException)
            raise stopping.Stopped(signal.SIGTERM) from e
        metrics = summarize(job.recorder.rows, job.monitor, job.mode)
        metrics["stopped_early"] = len(job.recorder.rows) < job.trainer.max_epochs  # EarlyStopping, say
        if job.test:
            metrics["test"] = job.test_best(attempt.best_checkpoint())
        from runkit.training import loggers
        loggers.record_hparams(job.trainer.loggers, flat, metrics)
    except stopping.Stopped as e:
        attempt.stop(e.signum)
        log(f"train: {e}")
        client.requeue(log)  # under SLURM: the job goes back to the queue, and resumes from the checkpoint
        raise
    except ConfigError:  # refused once training began: a monitor never logged, a binding never used
        log.close()
        attempt.undo()
        raise
    except Exception as e:
        bad = job.bad_config(e) if resume_from is None else None
        if bad is not None and attempt.created:
            log.close()
            attempt.undo()
            raise bad from e
        if bad is not None:
            e = bad
        attempt.fail(str(e), type(e).__name__, traceback.format_exc())
        if bad is not None:
            raise bad from None
        raise
    attempt.finish(metrics)
    return cli.plain(metrics)


def summarize(history, monitor, mode):
    """metrics.json: the monitored metric and its mode, the last history row, the best row."""
    from runkit.training.recorder import best_row
    return {"monitor": monitor, "mode": mode, "final": history[-1] if history else None,
            "best": best_row(history, monitor, mode)}
