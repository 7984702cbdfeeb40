"""The docs work as written: every `make TARGET` they name exists, every flag they give a tool is one its
--help lists, their Python snippets run, every relative link leads to a file (and a heading, when it names
one), and the README stays a five-minute read."""
import re
import shlex
import subprocess

import pytest

from conftest import DOCS, REPO, TOOLS

README_LIMIT = 12288  # bytes: what a newcomer reads in five minutes; the rest lives in docs/
# Files whose every line a user may read as a command: help texts, comments, CI.
PLAIN = sorted([REPO / "pyproject.toml", REPO / "e.sh", REPO / "e.yml", REPO / "Makefile", REPO / ".ci" / "run",
                *(REPO / "tools").iterdir(), *(REPO / "experiments").rglob("*.yaml")])


def _rel(path):
    return str(path.relative_to(REPO))


def code(markdown):
    """The code of a Markdown text, line by line: fenced and indented blocks, and `inline spans`."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced or line.startswith("    "):
            lines.append(line)
        else:
            lines.append(" ; ".join(re.findall(r"`([^`]+)`", line)))  # each span a command of its own
    return lines


OPTIONS_WITH_ARGUMENT = {"-C", "-f", "-o", "-W", "-I", "--directory", "--file"}


def targets_named(lines):
    """(line number, target) for each `make [OPTION...] [VAR=value...] TARGET` in the lines."""
    for number, line in enumerate(lines, 1):
        words = re.findall(r"[^\s;|&()`'\"#]+|[;|&()`'\"#]", line)
        for i, word in enumerate(words):
            if word != "make":
                continue
            rest = iter(words[i + 1:])
            for arg in rest:
                if arg in OPTIONS_WITH_ARGUMENT:
                    next(rest, None)
                elif not (arg.startswith("-") or "=" in arg):
                    target = arg.rstrip(":,.")
                    if re.fullmatch(r"[A-Za-z_][\w-]*", target):
                        yield number, target
                    break


def makefile_targets():
    text = (REPO / "Makefile").read_text()
    return {name for names in re.findall(r"^([\w.-][\w. -]*):(?!=)", text, re.MULTILINE) for name in names.split()}


def test_the_readme_is_a_five_minute_read():
    size = len((REPO / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes, over {README_LIMIT}: move reference text to docs/"


def test_every_make_target_the_docs_name_exists():
    defined = makefile_targets()
    assert {"env", "test", "test-fast", "tune_lr", "help"} <= defined
    named = [(f"{_rel(path)}:{n}", target) for path in DOCS for n, target in targets_named(code(path.read_text()))]
    named += [(f"{_rel(path)}:{n}", target) for path in PLAIN for n, target in
              targets_named(path.read_text().splitlines())]
    assert len(named) > 10  # the docs name a good dozen
    unknown = [f"{where}: make {target}" for where, target in named if target not in defined]
    assert not unknown, "targets the Makefile lacks:\n" + "\n".join(unknown)


@pytest.mark.parametrize("line, found", [
    ("make tune_lr DATASET=cifar10", ["tune_lr"]),
    ("make -s -o .venv/.done tune_lr", ["tune_lr"]),
    ("set -o pipefail; make sync SYNC_FLAGS=--once", ["sync"]),
    ("echo \"run 'make env' first\" # make help lists them", ["env", "help"]),
    ("make: no grid; make -C dir", []),
])
def test_targets_named_reads_make_lines(line, found):
    assert [t for _, t in targets_named([line])] == found


def test_code_of_markdown_is_blocks_and_spans_not_prose():
    text = "Axes make the product; `make test-all` runs them.\n\n    make bench\n```\nmake lint\n```\n"
    assert [t for _, t in targets_named(code(text))] == ["test-all", "bench", "lint"]


def slug(heading):
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    return {slug(h) for h in re.findall(r"^#+\s+(.*?)\s*#*$", path.read_text(), re.MULTILINE)}


def links(path):
    text = "\n".join(line for line in _prose(path.read_text()))
    for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # not http:, mailto:, ...
            yield target


def _prose(markdown):
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield line


def test_every_relative_link_leads_to_a_file_and_heading():
    broken = []
    for path in DOCS:
        for target in links(path):
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{_rel(path)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{_rel(path)}: {target} (no such heading in {dest.name})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_slug_is_githubs():
    assert slug("train: one run into one folder, resumable") == "train-one-run-into-one-folder-resumable"
    assert slug("On a SLURM cluster: runbatch --slurm") == "on-a-slurm-cluster-runbatch---slurm"
    assert slug("gridgen GRID.yaml") == "gridgen-gridyaml"


def python_blocks(markdown):
    """The ```python blocks of a Markdown text, as {first line: block}."""
    return {block.splitlines()[0]: block for block in re.findall(r"```python\n(.*?)```", markdown, re.DOTALL)}


@pytest.mark.slow
def test_the_docs_python_snippets_run(tmp_path):
    """Every ```python block of the docs works: one whose first line names a file of the repository shows
    that file as it is; a model of one's own, written where its first line says, trains when a config selects
    it; any other runs as a script (the Python API snippet trains and prints)."""
    import os
    import sys
    blocks = [(f"{_rel(path)}: {first}", first, block) for path in DOCS
              for first, block in python_blocks(path.read_text()).items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    (tmp_path / "configs").symlink_to(REPO / "configs")
    kinds = {}
    for where, first, block in blocks:
        path = first[2:] if first.startswith("# ") else ""
        if path and (REPO / path).is_file():
            assert block == f"{first}\n{(REPO / path).read_text()}", f"{where}: not the file as it is"
            kinds[where] = "file"
        elif path.startswith("lib/runkit/models/"):
            name = os.path.basename(path)[:-3]
            (tmp_path / f"{name}.py").write_text(block)
            (tmp_path / f"{name}.gin").write_text(f"import {name}\ntraining_loop.data = 'digits'\n"
                                                 f"classification.model = '{name}'\n{name}.hidden = 128\n")
            done = subprocess.run(["train", str(tmp_path / name), f"{name}.gin", "-b",
                                   "training_loop.n_epochs=1"], cwd=tmp_path, capture_output=True, text=True,
                                  env={**env, "PYTHONPATH": f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"})
            assert done.returncode == 0, f"{where}\n{done.stderr[-2000:]}"
            assert f"classification.model = '{name}'" in (tmp_path / name / "config.gin").read_text()
            kinds[where] = "model"
        else:
            done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True,
                                  env=env)
            assert done.returncode == 0, f"{where}\n{done.stderr[-2000:]}"
            kinds[where] = done.stdout
    api = [out for where, out in kinds.items() if "from runkit.training.train import train" in where]
    assert len(api) == 1 and api[0].startswith("val_acc 0."), kinds
    assert {"file", "model"} <= set(kinds.values()), kinds


def tool_commands(lines):
    """(line number, tool, arguments) for each command of a runkit tool in the lines: a pipeline stage (or
    an inline span) whose first word, after any VAR=value, is the tool."""
    for number, line in enumerate(lines, 1):
        line = re.sub(r"\s#\s.*", "", line)  # a shell comment
        for stage in re.split(r"\||;|&&|\$\(|\(|\)", line):
            try:
                words = shlex.split(stage)  # a quoted argument is one word: sync -e 'ssh -p 2222'
            except ValueError:  # a quote the split above cut in two
                words = stage.split()
            if words[:1] == ["$"]:  # a prompt
                words = words[1:]
            while words and re.fullmatch(r"[A-Za-z_]\w*=\S*", words[0]):
                words = words[1:]
            if words and words[0] in TOOLS:
                yield number, words[0], words[1:]


def help_flags(tool):
    """The tool's argparse options: the flags argparse lists at the start of its option lines
    (`  -j JOBS, --jobs JOBS  help`), not a flag-shaped word of the prose around them."""
    text = subprocess.run([tool, "--help"], capture_output=True, text=True, check=True).stdout
    invocations = [re.split(r"\s{2,}", line.strip(), maxsplit=1)[0] for line in text.splitlines() if line.startswith("  -")]
    return {part.split()[0] for invocation in invocations for part in invocation.split(", ")}


def test_every_flag_the_docs_give_a_tool_is_in_its_help():
    """--help is the reference for flags: the docs' commands use no flag it lacks."""
    flags = {tool: help_flags(tool) for tool in TOOLS}
    unknown, seen = [], 0
    for path in DOCS:
        for number, tool, words in tool_commands(code(path.read_text())):
            for word in words:
                if re.match(r"--?[A-Za-z]", word):
                    seen += 1
                    if word.split("=", 1)[0] not in flags[tool]:
                        unknown.append(f"{_rel(path)}:{number}: {tool} {word}")
    assert seen > 50  # the docs give the tools a good many flags
    assert not unknown, "flags the tools' --help does not list:\n" + "\n".join(unknown)


def test_tool_commands_reads_pipelines_and_spans():
    lines = ["gridgen g.yaml | jq -c . | runbatch --slurm --sbatch=--constraint=a100   # a comment --x",
             "$ PYTHONPATH=examples train RUN c.gin -b a.b=1 ; make train ; collect --history",
             "sync -e 'ssh -p 2222' . host:proj"]
    assert [(tool, words) for _, tool, words in tool_commands(lines)] == [
        ("gridgen", ["g.yaml"]), ("runbatch", ["--slurm", "--sbatch=--constraint=a100"]),
        ("train", ["RUN", "c.gin", "-b", "a.b=1"]), ("collect", ["--history"]),
        ("sync", ["-e", "ssh -p 2222", ".", "host:proj"])]
