"""Gin configuration for train: parse config files and -b bindings, flatten them, compare two runs' bindings.

The rule: config files apply in the order given, then each -b binding (see runkit.sweeps.bindings); a later
binding of the same parameter wins. Every component must be registered before parsing, so that an unknown
name or parameter is an error at parse time, before any run folder is touched.
"""
import os
import pprint
import re

import gin

from runkit import cli
from runkit.sweeps import bindings as binding_text
from runkit.training import internals, registry
from runkit.training.errors import ConfigError


def parse(configs, bindings, register):
    """Clear gin, parse the files then the bindings; return every binding flattened as {"fn.param": value}.
    `register` (runkit.training.components.register) imports the components once the files and bindings
    read well, so that a missing file or a malformed binding is refused before torch loads."""
    for config in configs:
        if not os.path.isfile(config):
            raise ConfigError(f"config file {config} does not exist")
    pieces = binding_text.split(bindings)
    for piece in pieces:
        binding_text.parse(piece)  # one clear message for a malformed binding, before gin sees it
    register()
    _register_references([open(c, encoding="utf-8").read() for c in configs] + list(pieces))
    for strict in (False, True):  # first to learn the classes named by import path, then every binding
        gin.clear_config()
        try:
            # not finalized: a locked config would refuse the next parse in this process (the Python API, tests)
            gin.parse_config_files_and_bindings(list(configs), pieces, finalize_config=False,
                                                skip_unknown=not strict)
        except (ValueError, SyntaxError, ImportError) as e:
            raise ConfigError(_with_hint(cli.first_line(e))) from None
        if not strict:
            _import_named_classes()
    return flatten()


def _import_named_classes():
    """Import and register the components training_loop names by import path ('my_project.lit.MyModel'),
    so that their parameters' bindings (`MyModel.hidden = 64`) parse; a wrong path is registry.UnknownName."""
    for field, kind in (("task", registry.TASKS), ("data", registry.DATA), ("callbacks", registry.CALLBACKS),
                        ("loggers", registry.LOGGERS)):
        try:
            value = gin.query_parameter(f"training_loop.{field}")
        except ValueError:
            continue  # not bound: training_loop's default
        for name in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(name, str) and "." in name:
                kind.get(name)


REFERENCE = re.compile(r"@(?:\w+/)*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)")


def _register_references(texts):
    """Make each class or function a config refers to by import path (`@torch.optim.Adam`,
    `@my_project.nets.Net()`) configurable under that path, so that the reference parses and its parameters
    bind (`torch.optim.Adam.lr = 0.01`); a path that does not import is left to gin's own error."""
    for text in texts:
        for path in REFERENCE.findall("\n".join(line.split("#")[0] for line in text.splitlines())):
            registry.by_path(path)


def flatten():
    """The bindings gin holds now as {"fn.param": JSON value}; references and macros keep their text."""
    flat = {}
    for (scope, selector), params in internals.gin_bindings().items():
        if selector == "gin.macro":
            flat[scope] = _plain(params["value"])
            continue
        name = selector.rsplit(".", 1)[-1]
        for param, value in params.items():
            flat[f"{scope + '/' if scope else ''}{name}.{param}"] = _plain(value)
    return dict(sorted(flat.items()))


# What runkit applied itself in this attempt, not through gin's call: the gin names whose bindings it applied
# (the `trainer.` bindings and Lightning's callbacks on the `lightning` package, partials named by import path),
# and the parameters it passed (`Classifier.optimizer`, a partial). runkit.training.fit fills them; config.gin
# and the check of unused bindings (runkit.training.unused_bindings) count them as used.
applied = set()
applied_parameters = set()


def operative_text():
    """config.gin's text: gin's operative config, with what gin would have written for what runkit applied by
    hand (on the `lightning` package, whose Trainer is built from the `trainer.` bindings by hand, the `trainer`
    section), each in its place among the others."""
    text = gin.operative_config_str().rstrip("\n")
    sections = text.split("\n\n") if text else []
    added = {name.rsplit(".", 1)[-1]: [f"{name}.{param} = {_gin_text(value)}" for param, value in
                                       sorted(gin.get_bindings(name, resolve_references=False).items())]
             for name in applied}
    for key in applied_parameters:
        name, param = key.rsplit(".", 1)
        added.setdefault(name.rsplit(".", 1)[-1], []).append(f"{key} = {_gin_text(gin.query_parameter(key))}")
    for short, lines in sorted(added.items()):
        lines = [line.replace("\n", "\n    ") for line in lines]
        title = f"# Parameters for {short}:"
        same = [i for i, part in enumerate(sections) if part.startswith(title + "\n")]
        if same:
            sections[same[0]] += "\n" + "\n".join(lines)
        elif lines:
            at = next((i for i, part in enumerate(sections) if part.startswith("# Parameters for ")
                       and part.split(":", 1)[0].removeprefix("# Parameters for ").lower() > short.lower()),
                      len(sections))
            sections.insert(at, "\n".join([title, "# " + "=" * 78, *lines]))
    return "\n\n".join(sections) + "\n"


def _gin_text(value):
    """A bound value as gin writes it: a reference as `@name`, anything else as its literal."""
    if type(value).__name__ == "ConfigurableReference":
        return repr(value)
    return pprint.pformat(value, width=76)


def _plain(value):
    """A value as it reads back from JSON: tuples become lists, gin references their text."""
    if isinstance(value, (bool, int, float, str, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


# The Trainer arguments runkit sets itself, and where a config says what it wants of them.
KIT_OWNED = {"max_epochs": "training_loop.n_epochs", "callbacks": "training_loop.callbacks",
             "logger": "training_loop.loggers", "default_root_dir": "the RUN_DIR argument",
             "enable_checkpointing": "training_loop.checkpoint_every_n_steps"}


def _with_hint(message):
    for name, instead in KIT_OWNED.items():
        if f"denylisted kwarg '{name}'" in message:
            return f"trainer.{name} is runkit's to set: use {instead}"
    return message

