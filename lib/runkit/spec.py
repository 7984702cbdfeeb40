"""Run specs: one JSON object per line (docs/spec.md), read and checked in one place.

Required keys: `name` (safe as a file name), `run_dir` (a path), `argv` (a non-empty list of strings).
Optional: `env` ({name: string}, added to the job's environment). Every other key passes through untouched.
"""
import re

from runkit.cli import UsageError, read_jsonl

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._,=+-]*$")


def check_name(name):
    """True for a name that is safe as a file name and in a shell: no '/', no '..', no metacharacters."""
    return isinstance(name, str) and bool(NAME.match(name)) and ".." not in name and len(name) <= 200


def check(spec, where):
    """Raise UsageError naming `where` (e.g. 'line 3 of stdin') if the spec breaks the contract."""
    for key in ("name", "run_dir", "argv"):
        if key not in spec:
            raise UsageError(f"{where}: run spec has no {key!r} (gridgen writes name, run_dir and argv)")
    if not check_name(spec["name"]):
        raise UsageError(f"{where}: run name {spec['name']!r} is not safe as a file name "
                         "(letters, digits and . _ , = + - only; no '..')")
    if not isinstance(spec["run_dir"], str) or not spec["run_dir"]:
        raise UsageError(f"{where}: run_dir must be a non-empty string")
    argv = spec["argv"]
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise UsageError(f"{where}: argv must be a non-empty list of strings")
    env = spec.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise UsageError(f"{where}: env must be an object of string values")
    return spec


def read(stream, source="stdin"):
    """All specs of a stream, checked; duplicate run folders are an error (two jobs, one folder)."""
    specs, seen = [], {}
    for number, spec in enumerate(read_jsonl(stream, source), 1):
        where = f"spec {number} of {source}"
        check(spec, where)
        if spec["run_dir"] in seen:
            raise UsageError(f"{where}: run_dir {spec['run_dir']} is also spec {seen[spec['run_dir']]}'s")
        seen[spec["run_dir"]] = number
        specs.append(spec)
    return specs
