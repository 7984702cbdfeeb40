"""The package layout is the architecture: the light packages (the run folder, sweeps, analysis, sync and the
CLI edges) never load torch, Lightning, pandas or gin, so gridgen, runbatch, collect, halving, propose and
sync start in a fraction of a second; only the training side and the plug-ins load them."""
import ast
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "lib"
LIGHT = ("rundir", "sweeps", "analysis", "sync")
HEAVY = {"torch", "pytorch_lightning", "lightning", "lightning_fabric", "pandas", "gin"}
DRAWS = {"runkit.analysis.plotting", "runkit.analysis.page"}  # plot's drawing: pandas and matplotlib, still no torch, Lightning or gin


def modules(package):
    """Every module of a package, those of its subpackages (sweeps.slurm) included."""
    return [m.name for m in pkgutil.walk_packages([str(LIB / "runkit" / package)], f"runkit.{package}.")]


def loaded_after_importing(names):
    code = ("import importlib, json, sys\n"
            f"for name in {names!r}: importlib.import_module(name)\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(LIB), "PATH": "/usr/bin:/bin"})
    return set(json.loads(out.stdout))


def test_every_light_package_imports_without_torch_lightning_pandas_or_gin():
    names = ["runkit", "runkit.cli", "runkit.timestamps", "runkit.git"] + [m for p in LIGHT for m in [f"runkit.{p}", *modules(p)] if m not in DRAWS]
    assert len(names) > 20  # the packages were found
    assert not loaded_after_importing(names) & HEAVY


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_drawing_loads_pandas_but_never_torch_lightning_or_gin(name):
    assert not loaded_after_importing([name]) & (HEAVY - {"pandas"})


def test_the_training_side_lives_in_its_own_package():
    top = {m.name for m in pkgutil.iter_modules([str(LIB / "runkit")])}
    assert top == {"cli", "errors", "timestamps", "git", "rundir", "sweeps", "analysis", "sync", "training", "tasks", "models",
                   "data", "callbacks"}


def test_every_bad_input_error_is_a_badinput_printed_in_one_place():
    """Exit 2 comes from one base class, printed in one place (cli.run_main): no tool sorts exceptions itself."""
    from runkit.data import DataMissing
    from runkit.errors import BadInput
    from runkit.rundir import attempt, checkpoints, lock, runs
    from runkit.sweeps import bindings, grid, snapshot
    from runkit.training import registry, train
    from runkit.training.errors import ConfigError
    for error in (lock.NoLocks, runs.NotARunFolder, checkpoints.NoSoundCheckpoint, bindings.BindingError,
                  grid.GridError, snapshot.NoProject, ConfigError, registry.UnknownName, train.RunBusy,
                  attempt.OtherRequest, DataMissing):
        assert issubclass(error, BadInput), error
    code = {p: p.read_text() for p in [*(LIB / "runkit").rglob("*.py"), *(LIB.parent / "tools").iterdir()]}
    assert not [p for p, text in code.items() if "UsageError" in text or "is_bad_input" in text]


RUN_FILES = re.compile(r"""(["'])(config\.gin|bindings\.json|command\.txt|meta\.json|history\.csv|metrics\.json|"""
                       r"""train\.log|stdout\.log|stderr\.log|HEARTBEAT|error\.json|FINISHED|STOPPED|spec\.json|"""
                       r"""slurm\.json|(last|best|prev)\.ckpt|\.lock)\1""")


def test_only_the_run_folder_package_names_the_run_folders_files():
    """Every other module reaches a run folder's files through runkit.rundir (runs.HISTORY, runs.read_json, ...)."""
    outside = [p for p in [*(LIB / "runkit").rglob("*.py"), *(LIB.parent / "tools").iterdir()]
               if "rundir" not in p.parts and RUN_FILES.search(p.read_text())]
    assert outside == []


PYTHONS = ("os", "sys", "threading", "atexit")  # the interpreter's own, stable across Python 3 releases
PRIVATE = re.compile(r"""(\w+)\._[a-z]\w*|[gs]etattr\([^,]+,\s*["']_[a-z]""")


def test_only_the_internals_module_touches_a_private_attribute_of_lightning_or_gin():
    """Lightning's and gin's private attributes (what exact resume leans on) are read in one module,
    runkit.training.internals, with the versions it was checked against; a runkit object's own `self._x`
    is not theirs, nor is the interpreter's (os._exit; threading and atexit, which a forked warm run
    calls to leave as an interpreter does)."""
    touching = {}
    for path in [*(LIB / "runkit").rglob("*.py"), *(LIB.parent / "tools").iterdir()]:
        found = [m.group(0) for m in PRIVATE.finditer(path.read_text()) if m.group(1) not in ("self", "cls", *PYTHONS)]
        if found:
            touching[path.name] = found
    assert set(touching) == {"internals.py"}, touching


def test_every_runkit_variable_is_written_down_in_the_protocol():
    """The RUNKIT_* variables pass the protocol between processes: each one is documented once, in docs/protocol.md."""
    repo = LIB.parent
    sources = [*(LIB / "runkit").rglob("*.py"), *(repo / "tools").iterdir(), *(repo / "scripts").iterdir(),
               repo / "Makefile", repo / ".ci" / "run", repo / "tests" / "conftest.py"]
    used = {v for p in sources for v in re.findall(r"\bRUNKIT_[A-Z_]*[A-Z]\b", p.read_text())}
    documented = set(re.findall(r"`(RUNKIT_[A-Z_]+)`", (repo / "docs" / "protocol.md").read_text()))
    assert used and used <= documented, sorted(used - documented)


def test_no_light_module_imports_torch_lightning_or_gin_even_inside_a_function():
    """A lazy import would still load torch in a light tool the moment that path runs."""
    heavy = re.compile(r"^\s*(import|from) (torch|pytorch_lightning|lightning|gin)\b", re.M)
    light = [*(LIB / "runkit" / p for p in LIGHT), LIB / "runkit" / "cli.py", LIB / "runkit" / "errors.py",
             LIB / "runkit" / "timestamps.py", LIB / "runkit" / "git.py"]
    files = [f for p in light for f in ([p] if p.is_file() else p.rglob("*.py"))]
    assert [str(f) for f in files if heavy.search(f.read_text())] == []


def test_no_module_of_the_library_is_over_350_lines():
    """A module holds one concern; past 350 lines it holds several (slurm.py held seven at 589)."""
    sizes = {str(p.relative_to(LIB)): len(p.read_text().splitlines()) for p in (LIB / "runkit").rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 350} == {}


def test_one_module_writes_error_json():
    """A failed attempt's error.json has one writer, runs.mark_failed (called by lifecycle.Run while it holds the
    run's lock, train's traceback included), so its schema is written once."""
    writes = re.compile(r"write_(json|atomic)\([^)]*\bERROR\b")
    writers = {str(p.relative_to(LIB / "runkit")) for p in (LIB / "runkit").rglob("*.py") if writes.search(p.read_text())}
    assert writers == {"rundir/runs.py"}


def rundir_names(path):
    """The distinct names of runkit.rundir a module uses: `runs.read_json` for a module imported from the package,
    `Attempt` for a name imported from one of its modules."""
    tree = ast.parse(path.read_text())
    modules, names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "runkit.rundir":
            modules |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("runkit.rundir."):
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import) and any(a.name.startswith("runkit.rundir") for a in node.names):
            names.add("import runkit.rundir")  # reached through its full name: counted, and never wanted
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            names.add(f"{node.value.id}.{node.attr}")
    return names


def test_train_leaves_the_run_folder_to_the_attempt_that_owns_it():
    """train parses the config, builds the job and runs it inside rundir's attempt (runkit.rundir.attempt), which
    decides about the folder: whether the run is done or busy, who begins and beats it, its one ending. train
    naming more of rundir is train deciding about the folder again."""
    used = rundir_names(LIB / "runkit" / "training" / "train.py")
    assert "runkit.rundir.attempt.Attempt" in used  # the names were found
    assert len(used) <= 4, sorted(used)


def imported_modules(path, name):
    """The runkit modules a module imports, those imported inside a function included: a lazy import hides a
    circle from the interpreter, not from the reader who must change one of its modules."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + [base] * bool(base))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_lib_imports_in_layers_without_a_circle():
    """Every import points down (errors and the Lightning-facing leaves, config, the pieces, fit, then train, the
    CLI and the zygote): a module can be read, changed and tested with only what lies below it."""
    paths = {".".join(p.relative_to(LIB).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (LIB / "runkit").rglob("*.py")}
    graph = {name: {m for m in imported_modules(path, name) if m in paths and m not in (name, "runkit")}
             for name, path in paths.items()}
    assert len(graph) > 80 and sum(map(len, graph.values())) > 100  # the modules and their imports were found
    done, path, circles = set(), [], []

    def visit(name):  # depth first; a module met again while still on the path closes a circle
        if name in path:
            circles.append(path[path.index(name):] + [name])
        elif name not in done:
            path.append(name)
            for below in sorted(graph[name]):
                visit(below)
            done.add(path.pop())

    for name in sorted(graph):
        visit(name)
    assert circles == []
