"""The run's settings and the Lightning objects built from them: data module, task, callbacks, loggers and
the Trainer. Building touches no file, so a component that refuses its parameters is bad config, caught
before the run folder is.

A task written on the unified `lightning` package trains on `lightning.pytorch.Trainer`, with the same
bindings (runkit.training.lightning_package). Every `pytorch_lightning.Trainer` argument binds from gin under `trainer.` (`trainer.gradient_clip_val = 1.0`,
`trainer.precision = 'bf16-mixed'`, `trainer.devices = 2`), except those runkit owns: the epochs are
`training_loop.n_epochs`, callbacks and loggers are chosen by name in `training_loop`, and the run folder is
where checkpoints go. runkit's defaults, each overridden by binding it: one device, deterministic
algorithms (warning where none exists), no sanity validation, a progress bar only on a terminal.

Started by `srun` as one of several tasks (`runbatch --slurm --nodes N --ntasks-per-node T`), the run takes
its shape from SLURM: `num_nodes` = N and `devices` = T, the DDP strategy unless one is bound, and Lightning's
SLURMEnvironment for the ranks, without its own requeueing (runkit's stop signals and requeue do that once).
"""
import inspect
import sys
from dataclasses import dataclass

import gin
import pytorch_lightning as pl
import torch

from runkit.training import checkpoint_io, config, lightning_package, monitor, optim
from runkit.training.config import KIT_OWNED
from runkit.training.epoch_start import EpochStartReplay
from runkit.training.errors import ConfigError
from runkit.training.loaders import LoaderReport
from runkit.training.recorder import RunRecorder
from runkit.training.registry import CALLBACKS, DATA, LOGGERS, TASKS
from runkit.training.unused_bindings import RefuseUnused

trainer = gin.external_configurable(pl.Trainer, name="trainer", denylist=list(KIT_OWNED))


@gin.configurable
@dataclass
class training_loop:  # noqa: N801 - the gin name configs use: `training_loop.n_epochs = 5`
    """What the run is: which task on which data, for how long, and what runkit adds around it."""
    task: str = "classification"
    data: str = None
    n_epochs: int = 1
    seed: int = 0
    callbacks: tuple = ()                 # Lightning callbacks by registered name (runkit.callbacks)
    loggers: tuple = ("tensorboard",)     # by name: tensorboard, csv, mlflow (runkit.training.loggers)
    monitor: str = None                   # the metric "best" is chosen by; the task's default if None
    mode: str = None                      # 'max' or 'min'; the task's default if None
    test: bool = False                    # after fitting, test the best checkpoint on the test split
    checkpoint_every_n_steps: int = 500   # also at each epoch's end; a kill loses at most this many steps
    stop_on_nan: bool = True              # a NaN/inf training metric fails the run

    def components(self):
        """The registered classes this config names (UnknownName if one is not)."""
        if not self.data:
            raise ValueError("training_loop.data is not set: bind it in a config file or with "
                             "-b \"training_loop.data='digits'\"")
        if not isinstance(self.n_epochs, int) or self.n_epochs < 1:
            raise ValueError(f"training_loop.n_epochs = {self.n_epochs!r}: give a number of epochs, 1 or more")
        if self.mode not in (None, "min", "max"):
            raise ValueError(f"training_loop.mode = {self.mode!r}: give 'min' or 'max'")
        return (TASKS.get(self.task), DATA.get(self.data), [CALLBACKS.get(n) for n in self.callbacks],
                [LOGGERS.get(n) for n in self.loggers])


class Job:
    """One attempt's Lightning objects. `flat` is every gin binding (runkit.training.config.flatten)."""

    def __init__(self, settings, run_dir, flat, log):
        config.applied.clear()  # what runkit applies by hand in this attempt (config.gin, unused bindings)
        config.applied_parameters.clear()
        task_class, data_class, callback_classes, logger_functions = settings.components()
        adapt = lightning_package.adapt
        lightning_package.use(task_class)
        lightning_package.check("data module", settings.data, data_class)
        for name, cls in zip(settings.callbacks, callback_classes, strict=True):
            if not _is_lightnings_own(cls):
                lightning_package.check("callback", name, cls)
        check_optimizer_bindings()
        pl.seed_everything(settings.seed, verbose=False)  # the model's initial weights
        self.data = construct(data_class, DATA.gin_name(settings.data), flat, {"seed": settings.seed})
        self.task = construct(task_class, TASKS.gin_name(settings.task), flat,
                              task_arguments(settings, task_class, self.data, flat))
        self.monitor, self.mode = monitor.choose(settings.monitor, settings.mode, self.task)
        self.recorder = adapt(RunRecorder)(run_dir, settings.n_epochs, self.monitor, self.mode,
                                    settings.checkpoint_every_n_steps, settings.stop_on_nan, log)
        self.test, self.settings, self.flat = settings.test, settings, flat
        self.loaders = loaders = adapt(LoaderReport)(run_dir, [self.data, self.task], settings.seed, log)  # exact resume of plain ones
        if self.test and not has_test_split(self.data):
            raise ValueError(f"training_loop.test = True, but data {settings.data!r} has no test split: "
                             "drop training_loop.test, or give the data a test split")
        self.checkpoint_io = adapt(checkpoint_io.AtomicCheckpointIO)()
        plugins = checkpoint_io.compose(self.checkpoint_io, bound_plugins() if "trainer.plugins" in flat else [])
        defaults = {"devices": 1, "deterministic": "warn", "num_sanity_val_steps": 0,
                    "enable_model_summary": False, "enable_progress_bar": sys.stderr.isatty()}
        layout = slurm_layout()
        if layout:
            defaults.update(layout, strategy="ddp")
            plugins.append(_slurm_environment())
            for name, value in layout.items():
                if f"trainer.{name}" in flat and flat[f"trainer.{name}"] != value:
                    raise ConfigError(f"trainer.{name}={flat[f'trainer.{name}']!r}, but SLURM started "
                                      f"{layout['num_nodes']} node(s) x {layout['devices']} task(s): the job's "
                                      "shape comes from runbatch --nodes/--ntasks-per-node; drop the binding")
        self.trainer = make_trainer(
            max_epochs=settings.n_epochs, default_root_dir=run_dir, enable_checkpointing=True,
            callbacks=[adapt(EpochStartReplay)(self.recorder)]  # first: before any other callback's batch start
            + [make_callback(cls, CALLBACKS.gin_name(name), flat, {"monitor": self.monitor, "mode": self.mode})
               for name, cls in zip(settings.callbacks, callback_classes, strict=True)]
            + [adapt(RefuseUnused)(), loaders, self.recorder],
            logger=make_loggers(logger_functions, settings.loggers, flat, run_dir, checkpoint_io.checkpoint_step(run_dir))
            or False,
            plugins=plugins,
            **{k: v for k, v in defaults.items() if f"trainer.{k}" not in flat})

    def bad_config(self, error):
        """The ConfigError a failure before the first training step is (None after it): it names the component
        and its bindings, since a rerun would fail the same way."""
        if self.loaders.stepped:
            return None
        field, registry = ("data", DATA) if self.loaders.phase == "data" else ("task", TASKS)
        name = getattr(self.settings, field)
        prefix = registry.gin_name(name) + "."
        bound = [f"{k}={v!r}" for k, v in self.flat.items() if k.startswith(prefix) or k.split("/")[-1].startswith(prefix)]
        text = (str(error).strip().splitlines() or [""])[0]
        return ConfigError(f"{field} {name!r} failed before the first training step: {type(error).__name__}: "
                           f"{text}" + (f" (its bindings: {', '.join(bound)})" if bound else ""))

    def fit(self, ckpt_path):
        # the run's own checkpoint is unpickled whole, anything else with weights_only (checkpoint_io.weights_only)
        try:
            self.trainer.fit(self.task, datamodule=self.data, ckpt_path=ckpt_path,
                             weights_only=checkpoint_io.weights_only(ckpt_path))
        finally:
            self.checkpoint_io.close()  # the last checkpoint is whole before the run records its ending

    def test_best(self, best_path):
        """The test split's figures for the best checkpoint: {"test_acc": ...}."""
        results = self.trainer.test(self.task, datamodule=self.data, ckpt_path=best_path, verbose=False,
                                    weights_only=checkpoint_io.weights_only(best_path))
        return {k: float(v) for part in results for k, v in part.items()}


def make_trainer(**arguments):
    """The Trainer of the task's package, with the `trainer.` bindings."""
    if lightning_package.active == lightning_package.PYTORCH_LIGHTNING:
        return trainer(**arguments)
    config.applied.add("trainer")
    return lightning_package.module().Trainer(**{**gin.get_bindings("trainer"), **arguments})


def bound_plugins():
    """trainer.plugins as objects (gin holds `@Plugin()` as a reference, which the Trainer would refuse)."""
    def made(value):
        if not isinstance(value, gin.config.ConfigurableReference):
            return value
        return value.scoped_configurable_fn() if value.evaluate else value.scoped_configurable_fn
    bound = gin.query_parameter("trainer.plugins")
    return [made(p) for p in (bound if isinstance(bound, (list, tuple)) else [bound])]


def _is_lightnings_own(cls):
    """One of Lightning's callbacks, registered by name (runkit.callbacks): it is taken from the run's package."""
    return lightning_package.of_module(cls) is not None or lightning_package.of_module(cls.__mro__[1]) is not None


def make_callback(cls, name, flat, provided):
    """A callback; one of Lightning's own comes from the task's package, with the bindings of its name. One
    watching the run's monitor (EarlyStopping) leaves a monitor never logged to runkit's check, which says so
    in one line (runkit.training.monitor), rather than raise its own error first."""
    if f"{name}.monitor" not in flat:
        provided = {**provided, "strict": False}
    if not _is_lightnings_own(cls) or lightning_package.active == lightning_package.PYTORCH_LIGHTNING:
        return construct(cls, name, flat, provided)
    original = cls if lightning_package.of_module(cls) else cls.__mro__[1]
    config.applied.add(name)
    return construct(lightning_package.counterpart(original), name, flat, provided, gin.get_bindings(name))


def slurm_layout(environ=None):
    """{"num_nodes", "devices"} of a run that srun started as several tasks (devices: tasks per node), else None."""
    import os
    environ = os.environ if environ is None else environ
    tasks = int(environ.get("SLURM_STEP_NUM_TASKS") or 1)
    if tasks <= 1 or "SLURM_STEP_ID" not in environ or "SLURM_PROCID" not in environ:
        return None
    nodes = int(environ.get("SLURM_STEP_NUM_NODES") or environ.get("SLURM_NNODES") or 1)
    per_node = environ.get("SLURM_NTASKS_PER_NODE") or str(tasks // nodes)
    return {"num_nodes": nodes, "devices": int(per_node.split("(")[0])}


def _slurm_environment():
    environments = lightning_package.fabric("plugins.environments")
    return environments.SLURMEnvironment(auto_requeue=False)  # the kit checkpoints and requeues once, from rank 0


def has_test_split(data):
    """runkit's data modules say (has_test); any other LightningDataModule has one if it defines
    test_dataloader."""
    known = getattr(data, "has_test", None)
    if known is not None:
        return bool(known)
    return lightning_package.defines(data, "test_dataloader")


def make_loggers(functions, names, flat, run_dir, resume_step):
    """The loggers; one whose package is missing is bad config. A logger class named by its import path
    ('pytorch_lightning.loggers.CSVLogger') writes in the run folder unless its save_dir is bound."""
    def make(function, name):
        if isinstance(function, type):
            return construct(function, LOGGERS.gin_name(name), flat, {"save_dir": run_dir})
        return function(run_dir, resume_step)
    try:
        return [make(function, name) for function, name in zip(functions, names, strict=True)]
    except (ImportError, ModuleNotFoundError) as e:
        raise ConfigError(f"a logger in training_loop.loggers needs a package that is not installed "
                          f"({str(e).splitlines()[0].split(';')[0]}): pip install it, or choose another logger") from None


def check_optimizer_bindings():
    """runkit.training.optim's bindings fail here, before the run folder is touched, rather than at fit time;
    called around gin, so that a run that never uses them still has them unused (runkit.training.unused_bindings)."""
    for name, function, arguments in (("optimizer", optim.optimizer, [[torch.nn.Parameter(torch.zeros(1))]]),
                                      ("lr_schedule", optim.lr_schedule, [])):
        bound = gin.get_bindings(name)
        try:
            function.__wrapped__(*arguments, **bound)
        except ConfigError:
            raise
        except (TypeError, ValueError) as e:
            given = ", ".join(f"{name}.{k}={v!r}" for k, v in sorted(bound.items()))
            raise ConfigError(f"{name}: {str(e).strip()} (its bindings: {given})") from None


def construct(cls, name, flat, provided, bound=None):
    """cls(**what runkit provides): each parameter it takes that the config does not bind, from `provided`
    (a task's input_shape from its data module, a data module's seed from training_loop.seed, a callback's
    monitor and mode from the run's: EarlyStopping watches what picks `best` unless told otherwise)."""
    try:
        params = inspect.signature(cls.__init__ if isinstance(cls, type) else cls).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {p: provided[p] for p in params if p in provided and f"{name}.{p}" not in flat}
    # bound: the bindings of a class gin does not wrap; a partial replaces gin's wrapper of its class there too
    return cls(**{**(bound or {}), **kwargs, **partials(name, params, flat)})


def partials(name, params, flat):
    """{param: functools.partial(Class, **Class's bindings)} for each parameter bound to a gin reference without
    `()` (`MyModel.optimizer = @torch.optim.Adam`, with `torch.optim.Adam.lr = 0.01`): the shape of the
    optimizer and scheduler arguments of the most-used Lightning templates. gin would pass its own wrapper of
    the class, which Lightning's save_hyperparameters cannot pickle and drops; a partial of the class itself
    keeps (docs/own-project.md)."""
    import functools
    found = {}
    for param in params:
        if f"{name}.{param}" not in flat:
            continue
        value = gin.query_parameter(f"{name}.{param}")
        if isinstance(value, gin.config.ConfigurableReference) and not value.evaluate:
            found[param] = functools.partial(value.configurable.wrapped, **gin.get_bindings(value.scoped_selector))
            config.applied.add(value.configurable.selector)
            config.applied_parameters.add(f"{name}.{param}")
    return found


def task_arguments(settings, task_class, data, flat):
    """What the task's parameters get from the data module: its attributes of the same names. One the task
    needs that the data module has only once set up (a vocabulary's size, built in setup()): the data module is
    prepared and set up for fit first, as Lightning's docs show (`dm.setup("fit")`, then the model); one still
    missing is bad config naming what to bind."""
    name = TASKS.gin_name(settings.task)
    needed = [p.name for p in _parameters(task_class) if p.default is p.empty and f"{name}.{p.name}" not in flat
              and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    provided = vars_of(data)
    if all(p in provided for p in needed):
        return provided
    data.prepare_data()
    data.setup("fit")
    provided = vars_of(data)
    missing = [p for p in needed if p not in provided]
    if missing:
        raise ConfigError(f"task {settings.task!r} needs {', '.join(missing)}, which no binding gives and data "
                          f"module {settings.data!r} does not have after setup(): bind "
                          + " and ".join(f"{name}.{p}" for p in missing) + ", or set it on the data module "
                          f"(self.{missing[0]} = ... in __init__ or setup())")
    return provided


def _parameters(cls):
    try:
        params = inspect.signature(cls.__init__ if isinstance(cls, type) else cls).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p for p in params if p.name != "self"]


def vars_of(data):
    """The data module's attributes a task may ask for by parameter name."""
    return {name: getattr(data, name) for name in dir(data)
            if not name.startswith("_") and not callable(getattr(type(data), name, None))
            and not isinstance(getattr(type(data), name, None), property)}
