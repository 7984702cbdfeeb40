"""Run specs: one JSON object per line (docs/spec.md), read and checked in one place.

Required keys: `name` (safe as a file name), `run_dir` (a path), `argv` (a non-empty list of strings).
Optional: `env` ({name: string}, added to the job's environment). Every other key passes through untouched.
Also what a run is made from (made_from, recorded as RUN_DIR/spec.json) and what changed between two
records (changes): the rule of docs/spec.md, 'Changed specs'.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Mapping
from typing import IO, Any, TypedDict, cast

from runkit.cli import read_jsonl
from runkit.errors import BadInput
from runkit.sweeps import bindings
from runkit.sweeps import changes as rule

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._,=+-]*$")


class _Spec(TypedDict):
    name: str
    run_dir: str
    argv: list[str]


class Spec(_Spec, total=False):
    """A run spec as read and checked (docs/spec.md); any other key passes through untouched."""
    env: dict[str, str]
    experiment: str
    configs: list[str]
    bindings: dict[str, Any]
    gin_bindings: dict[str, Any]


def check_name(name: object) -> bool:
    """True for a name that is safe as a file name and in a shell: no '/', no '..', no metacharacters."""
    return isinstance(name, str) and bool(NAME.match(name)) and ".." not in name and len(name) <= 200


def check(spec: dict, where: str) -> Spec:
    """Raise BadInput naming `where` (e.g. 'line 3 of stdin') if the spec breaks the contract."""
    for key in ("name", "run_dir", "argv"):
        if key not in spec:
            raise BadInput(f"{where}: run spec has no {key!r} (gridgen writes name, run_dir and argv)")
    if not check_name(spec["name"]):
        raise BadInput(f"{where}: run name {spec['name']!r} is not safe as a file name "
                         "(letters, digits and . _ , = + - only; no '..')")
    if not isinstance(spec["run_dir"], str) or not spec["run_dir"]:
        raise BadInput(f"{where}: run_dir must be a non-empty string")
    argv = spec["argv"]
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise BadInput(f"{where}: argv must be a non-empty list of strings")
    env = spec.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise BadInput(f"{where}: env must be an object of string values")
    return cast(Spec, spec)


def read(stream: IO[str], source: str = "stdin") -> list[Spec]:
    """All specs of a stream, checked; duplicate run folders are an error (two jobs, one folder)."""
    specs: list[Spec] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(read_jsonl(stream, source), 1):
        where = f"spec {number} of {source}"
        spec = check(raw, where)
        if spec["run_dir"] in seen:
            raise BadInput(f"{where}: run_dir {spec['run_dir']} is also spec {seen[spec['run_dir']]}'s")
        seen[spec["run_dir"]] = number
        specs.append(spec)
    return specs


# ---- what a run is made from (spec.json), and what changed ------------------------------------

def made_from(spec: Spec) -> dict:
    """What spec.json records of a spec: the command, the bindings and the config files' contents.

    The command is the argv with the run folder, the config files and the -b bindings taken out (they are
    compared on their own), so that moving the results or the checkout changes nothing.
    """
    configs = spec.get("configs")
    if not (isinstance(configs, list) and all(isinstance(c, str) for c in configs)):
        configs = [w for w in spec["argv"][1:] if w.endswith(".gin") and os.path.isfile(w)]
    command, found = _command_and_bindings(spec["argv"], spec["run_dir"], configs)
    given = spec.get("gin_bindings")
    return {"name": spec["name"], "argv": spec["argv"], "command": command,
            "gin_bindings": dict(given) if isinstance(given, dict) else found,
            "configs": configs, "config_sha256": [_digest(c) for c in configs]}


def changes(old: dict, new: dict, trained: dict | None = None) -> tuple[list[str], bool]:
    """(conflicts, continued): texts naming what differs between spec.json records `old` and `new`
    ('optimizer.momentum: 0.9 -> 0.5'), and whether more training_loop.n_epochs continues the run.

    A binding the old spec did not set is looked up in `trained` (train's bindings.json: every binding
    the run used), so binding explicitly the value a config gave is no change.
    """
    conflicts, continued = [], False
    if old.get("command") != new["command"]:
        conflicts.append(f"command: {_words(old.get('command'))} -> {_words(new['command'])}")
    # the lengths may differ: that is said below
    for n, (a, b) in enumerate(zip(old.get("config_sha256", []), new["config_sha256"], strict=False)):
        if a != b:
            conflicts.append(f"config {new['configs'][n]}: its bindings changed")
    if len(old.get("config_sha256", [])) != len(new["config_sha256"]):
        conflicts.append(f"configs: {old.get('configs')} -> {new['configs']}")
    before, after = _flat_keys(old.get("gin_bindings", {})), _flat_keys(new["gin_bindings"])
    for key in sorted(set(before) | set(after)):
        a = before.get(key, (trained or {}).get(key, rule.UNSET))
        b = after.get(key, rule.UNSET)
        if rule.same(a, b):
            continue
        if key == rule.CONTINUABLE and _more(a, b):
            continued = True
            continue
        conflicts.append(rule.said(key, a, b))
    return conflicts, continued


def trained_changes(trained: dict, new: dict) -> tuple[list[str], bool]:
    """changes() for a folder that train made by hand (bindings.json, no spec.json): the bindings the spec sets."""
    return changes({**new, "gin_bindings": {}}, new, trained)


def _command_and_bindings(argv: list[str], run_dir: str, configs: list[str]) -> tuple[list[str], dict[str, Any]]:
    command: list[str] = []
    found: dict[str, Any] = {}
    words = iter(argv)
    for word in words:
        if word in ("-b", "--bind"):
            text = next(words, "")
            try:
                found.update(bindings.parse(piece) for piece in bindings.split([text]))
                continue
            except bindings.BindingError:
                command += [word, text]
                continue
        command.append("{run_dir}" if word == run_dir else "{config}" if word in configs else word)
    return command, found


def _flat_keys(given: Mapping[str, Any]) -> dict[str, Any]:
    """Binding names as train's bindings.json writes them: 'runkit.loop.training_loop.x' is 'training_loop.x'."""
    out = {}
    for key, value in given.items():
        scope, _, name = key.rpartition("/")
        selector, _, param = name.rpartition(".")
        out[f"{scope + '/' if scope else ''}{selector.rsplit('.', 1)[-1]}.{param}"] = value
    return out


def _digest(config: str) -> str | None:
    """sha256 of a config file's lines without comments and blank lines; None if it cannot be read."""
    try:
        with open(config, encoding="utf-8") as f:
            lines = [line.rstrip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    except OSError:
        return None
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _more(a: Any, b: Any) -> bool:
    numbers = all(isinstance(x, int) and not isinstance(x, bool) for x in (a, b))
    return numbers and b > a


def _words(command: object) -> str:
    return shlex.join(command) if isinstance(command, list) else "(unknown)"


def with_binding(spec: Spec, key: str, value: Any) -> Spec:
    """A copy of the spec that binds key=value: in gin_bindings and in argv (the word after a `-b` that binds
    only this key is replaced, else `-b key=value` is appended: train takes the last binding of a key)."""
    text = bindings.format(key, value)
    argv, replaced = list(spec["argv"]), False
    for i in range(1, len(argv)):
        if argv[i - 1] in ("-b", "--bind") and argv[i].partition("=")[0].strip() == key and "#" not in argv[i]:
            argv[i], replaced = text, True
    if not replaced:
        argv += ["-b", text]
    out = cast(Spec, {**spec, "argv": argv})
    if isinstance(spec.get("gin_bindings"), dict):
        out["gin_bindings"] = {**spec["gin_bindings"], key: value}
    return out
