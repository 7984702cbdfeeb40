"""The docs work as written: every `make TARGET` they name exists, the README's Python snippets run, every
relative link leads to a file (and a heading, when it names one)."""
import re

import pytest

from conftest import REPO

DOCS = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "experiments").rglob("*.md")])
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


def test_every_make_target_the_docs_name_exists():
    defined = makefile_targets()
    assert {"env", "test", "test-fast", "tune_lr", "help"} <= defined
    named = [(f"{_rel(path)}:{n}", target) for path in DOCS for n, target in targets_named(code(path.read_text()))]
    named += [(f"{_rel(path)}:{n}", target) for path in PLAIN for n, target in
              targets_named(path.read_text().splitlines())]
    assert len(named) > 10  # the README names a good dozen
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


def test_the_readmes_python_snippets_run(tmp_path):
    """The Python API snippet trains and prints; the model of one's own, written where its first line says,
    trains when a config selects it."""
    import os
    import subprocess
    import sys
    blocks = python_blocks((REPO / "README.md").read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    (tmp_path / "configs").symlink_to(REPO / "configs")
    api = next(block for first, block in blocks.items() if first.startswith("from runkit.training.train import train"))
    done = subprocess.run([sys.executable, "-c", api], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout.startswith("val_acc 0."), done.stderr[-2000:]

    model = blocks["# lib/runkit/models/tiny.py"]
    (tmp_path / "tiny.py").write_text(model)
    (tmp_path / "tiny.gin").write_text("import tiny\nclassification.model = 'tiny'\ntiny.hidden = 128\n")
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    done = subprocess.run(["train", str(tmp_path / "run"), "configs/digits_mlp.gin", "tiny.gin", "-b",
                           "training_loop.n_epochs=1"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "classification.model = 'tiny'" in (tmp_path / "run" / "config.gin").read_text()
