"""The environment: requirements.txt, e.yml and pyproject.toml agree; installing runkit is the one way its tools
get on PATH; `make test` runs ruff first; the tests pass on a fresh, busy machine (programs missing, no time
limits)."""
import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        from conftest import skip
        skip("reads pyproject.toml with tomllib (Python 3.11+) or tomli (pip install tomli)", allow_module_level=True)

from conftest import REPO, SHIMS, TOOLS, missing, skip

# The programs a fresh machine lacks and .ci/run installs (Debian: jq parallel rsync watchman openssh-server
# openssh-client slurmctld slurmd slurm-client munge chromium).
OPTIONAL = ("jq", "parallel", "rsync", "watchman", "ssh", "sshd", "ssh-keygen", "munge", "munged", "slurmctld",
            "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo", "srun", "sacct", "chromium")


def pins(text):
    return set(re.findall(r"^[\s-]*([A-Za-z][\w.-]*==[\w.]+)\s*$", text, re.MULTILINE))


def _name(requirement):
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _version(text):
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_conda_file_has_the_same_pins():
    required = pins((REPO / "requirements.txt").read_text())
    assert required and pins((REPO / "e.yml").read_text()) == required


def test_every_pin_is_exact():
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z][\w.-]*==[\w.]+", line.strip()), line


def test_pyproject_declares_every_pinned_package_with_a_lower_bound_the_pin_meets():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pinned = {_name(p): _version(p.split("==")[1]) for p in pins((REPO / "requirements.txt").read_text())}
    assert {_name(r) for r in declared} == set(pinned)
    for requirement in declared:
        bound = re.fullmatch(r"([A-Za-z][\w.-]*)>=([\d.]+)", requirement)
        assert bound, f"{requirement}: a lower bound (>=), no pin; requirements.txt pins"
        assert pinned[_name(requirement)] >= _version(bound[2]), requirement


def _install(tmp_path, *how):
    """pip install the package (from a copy of the checkout) into a folder of its own: never into the
    running environment, which other checkouts may share. Offline: it builds with this environment's setuptools."""
    try:
        import setuptools
    except ModuleNotFoundError:
        skip("pip builds runkit with setuptools (make env installs it)")
    if _version(setuptools.__version__) < (70, 1) and importlib.util.find_spec("wheel") is None:
        skip(f"setuptools {setuptools.__version__} builds wheels only with the wheel package")
    src = tmp_path / "src"
    for part in ("lib", "tools"):
        shutil.copytree(REPO / part, src / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(REPO / "pyproject.toml", src)
    target = tmp_path / "target"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), *how, str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return src, target


def _installed_tools(target):
    bin_dir = target / "bin"
    assert sorted(p.name for p in bin_dir.iterdir()) == sorted(TOOLS)
    for name in TOOLS:
        script = (bin_dir / name).read_text()
        assert os.access(bin_dir / name, os.X_OK) and script.startswith("#!") and sys.executable in script.split("\n")[0]
        # the tool as it is in tools/, but for the interpreter pip wrote into the first line
        assert script.split("\n", 1)[1] == (REPO / "tools" / name).read_text().split("\n", 1)[1]
    return bin_dir


def test_pip_install_puts_the_tools_on_path(tmp_path):
    _, target = _install(tmp_path)
    bin_dir = _installed_tools(target)
    # Run from elsewhere, the installed runkit and nothing of the checkout: the tools work.
    path = [str(bin_dir)] + [p for p in os.environ["PATH"].split(os.pathsep) if p != SHIMS]
    env = dict(os.environ, PATH=os.pathsep.join(path), PYTHONPATH=str(target))
    where = subprocess.run([sys.executable, "-c", "import runkit; print(runkit.__file__)"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(target))
    for name in ("gridgen", "runbatch", "collect", "halving"):  # the light ones: no torch to import
        proc = subprocess.run([name, "--help"], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0 and "examples:" in proc.stdout, (name, proc.stderr)
        assert shutil.which(name, path=env["PATH"]) == str(bin_dir / name)


def test_pip_install_editable_puts_the_tools_on_path_and_runkit_stays_in_the_checkout(tmp_path):
    src, target = _install(tmp_path, "-e")
    _installed_tools(target)
    pth = [p.read_text().split() for p in target.glob("*.pth")]
    assert pth == [[str(src / "lib")]]  # a plain path: PYTHONPATH still comes first (the tests' worktrees)


def test_one_way_onto_path():
    """No tool patches sys.path, and neither the Makefile nor e.sh puts tools/ on PATH or writes wrappers."""
    for name in TOOLS:
        assert "sys.path" not in (REPO / "tools" / name).read_text(), name
    assert {p.name for p in (REPO / "tools").iterdir()} == set(TOOLS)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["script-files"]
    assert sorted(scripts) == sorted(f"tools/{name}" for name in TOOLS)
    makefile, e_sh = (REPO / "Makefile").read_text(), (REPO / "e.sh").read_text()
    assert "/tools" not in makefile and "#!" not in makefile and "/tools" not in e_sh  # no PATH entry, no wrapper
    assert re.search(r"^\$\(VENV\)/.done: .*\$\(wildcard tools/\*\)", makefile, re.MULTILINE)  # edits reinstall


def test_the_tests_run_this_checkouts_tools_and_runkit():
    for name in TOOLS:
        found = shutil.which(name)
        assert found == os.path.join(SHIMS, name)
        assert str(REPO / "tools" / name) in Path(found).read_text()
    where = subprocess.run([sys.executable, "-c", "import runkit; print(runkit.__file__)"], cwd="/",
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(REPO / "lib"))
    # make's recipes find them first too (RUNKIT_BIN)
    path = subprocess.run(["make", "-s", "-f", "Makefile", "-f", "-", "show-path"], input="show-path:\n\t@echo $$PATH\n",
                          cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert path.startswith(SHIMS + os.pathsep)


def _make_plan(target):
    proc = subprocess.run(["make", "-n", "-o", ".venv/.done", target], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize("target", ["test", "test-fast"])
def test_make_test_runs_ruff_before_pytest(target):
    plan = _make_plan(target)
    ruff = [i for i, line in enumerate(plan) if re.search(r"\bruff check\b", line)]
    pytest_ = [i for i, line in enumerate(plan) if "pytest" in line]
    assert ruff and pytest_ and ruff[0] < pytest_[0], plan


@pytest.mark.parametrize("target", ["test", "test-fast"])
def test_make_test_names_what_it_skipped_and_xfails_are_strict(target):
    assert any("pytest" in line and " -rs" in line.split("#")[0] for line in _make_plan(target))
    with open(REPO / "pyproject.toml", "rb") as f:
        assert tomllib.load(f)["tool"]["pytest"]["ini_options"]["xfail_strict"] is True  # a stale xfail fails


def test_ruff_finds_nothing():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."], cwd=REPO,
                          capture_output=True, text=True)
    assert "No module named ruff" not in proc.stderr, "ruff is not installed: make env installs requirements.txt"
    assert proc.returncode == 0, proc.stdout + proc.stderr


def path_without(tmp_path, programs):
    """A PATH of one folder that links to every program on PATH but these."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            link = bin_dir / entry.name
            if entry.name not in programs and not os.path.lexists(link) and os.access(entry.path, os.X_OK):
                link.symlink_to(entry.path)
    return str(bin_dir)


# Tests that run a program a fresh machine lacks; each must be skipped there, with the reason.
NEEDS_PROGRAMS = {
    "tests/test_pipeline.py::test_jq_selects_runs_between_gridgen_and_runbatch": "jq",
    "tests/test_pipeline_train.py::test_the_docs_jq_line_on_the_real_grid": "jq",
    "tests/test_pipeline_train.py::test_the_cifar10_sweep_trains_on_cifar10": "jq",
    "tests/test_slurm_cluster.py::test_a_second_cluster_in_its_own_dir_starts_and_stops_alone": "sbatch",
    "tests/test_runbatch_slurm.py::test_throttle_caps_the_tasks_running_at_once": "sbatch",
    "tests/test_report.py::test_the_page_in_chromium_offline": "chromium",
}


def _run_pytest(tmp_path, env, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "", "-rs", "-q",
                           "--basetemp", str(tmp_path / "inner"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_tests_that_need_a_missing_program_are_skipped_with_the_reason(tmp_path):
    env = dict(os.environ, PATH=path_without(tmp_path, OPTIONAL))
    env.pop("RUNKIT_TESTS_NEED_ALL", None)
    assert missing("jq", "sbatch", "rsync", path=env["PATH"]) == ["jq", "sbatch", "rsync"]
    proc = _run_pytest(tmp_path, env, *NEEDS_PROGRAMS)
    out = proc.stdout
    assert proc.returncode == 0 and f"{len(NEEDS_PROGRAMS)} skipped" in out.splitlines()[-1], out + proc.stderr
    for test, program in NEEDS_PROGRAMS.items():
        assert re.search(rf"SKIPPED \[1\] {re.escape(test.split('::')[0])}:\d+: needs [^\n]*{program}", out), (test, out)
    assert "apt-get install" in out
    # CI installs them all (.ci/run): there a test that would be skipped fails instead.
    strict = _run_pytest(tmp_path, dict(env, RUNKIT_TESTS_NEED_ALL="1"), next(iter(NEEDS_PROGRAMS)))
    assert strict.returncode == 1 and "RUNKIT_TESTS_NEED_ALL=1" in strict.stdout, strict.stdout


# No test holds a wall-clock limit: a busy 2-core machine misses any of them (bench/ is where timings live).
# Waiting with a deadline for something to happen is fine; asserting that it took under N seconds is not.
TIMERS = {"time", "monotonic", "perf_counter", "process_time"}


def timing_asserts(source):
    """Line numbers of asserts that compare a duration with a number."""
    tree = ast.parse(source)
    timers, timed = set(), set()

    def is_timed(node):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                func = sub.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if name in TIMERS | timers:
                    return True
            if isinstance(sub, ast.Name) and sub.id in timed:
                return True
        return False

    for _ in range(3):  # names and functions that hold or return times, to a fixed point
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(sub, ast.Return) and sub.value is not None and is_timed(sub.value)
                    for sub in ast.walk(node)):
                timers.add(node.name)
            elif isinstance(node, ast.Assign) and is_timed(node.value):
                timed.update(t.id for t in node.targets if isinstance(t, ast.Name))

    def is_number(node):
        return any(isinstance(sub, ast.Constant) and type(sub.value) in (int, float) for sub in ast.walk(node))

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            for compare in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
                sides = [compare.left, *compare.comparators]
                if any(is_timed(a) and not is_timed(b) and is_number(b) for a in sides for b in sides if a is not b):
                    found.append(node.lineno)
    return found


def test_timing_asserts_finds_limits_not_deadlines():
    source = """
import time
def _time():
    start = time.perf_counter()
    return time.perf_counter() - start
def test():
    start = time.monotonic()
    deadline = time.monotonic() + 10
    assert time.monotonic() < deadline, "timed out"
    assert 0 < len([1]) < 30
    assert status(now=time.time() + 5) == "dead"
    assert time.monotonic() - start < 10
    best = min(_time() for _ in range(3))
    assert best < 0.1
"""
    assert timing_asserts(source) == [12, 14]


@pytest.mark.parametrize("name", [p.name for p in sorted((REPO / "tests").rglob("*.py"))])
def test_no_test_asserts_how_long_something_took(name):
    path = next((REPO / "tests").rglob(name))
    assert timing_asserts(path.read_text()) == [], f"{path}: a wall-clock limit"


SKIPS = re.compile(r"pytest\.skip\(|\bskipif\b|importorskip|mark\.skip\b|pytest\.xfail\(")


@pytest.mark.parametrize("name", [p.name for p in sorted((REPO / "tests").rglob("*.py")) if p.name != "conftest.py"])
def test_every_skip_goes_through_conftest(name):
    """A skip of its own would be invisible to RUNKIT_TESTS_NEED_ALL: tests skip with conftest's requires(),
    skip() or need(), which fail instead where CI installed everything."""
    path = next((REPO / "tests").rglob(name))
    lines = [n for n, line in enumerate(path.read_text().splitlines(), 1)
             if SKIPS.search(line) and "SKIPS = " not in line]
    assert lines == [], f"{path}: lines {lines} skip without conftest.skip/requires"
