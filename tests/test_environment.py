"""The environment files agree: e.yml repeats requirements.txt's exact pins; make env puts every tool on PATH."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS = ["train", "gridgen", "runbatch", "collect", "plot", "sync"]


def pins(text):
    return set(re.findall(r"^[\s-]*([A-Za-z][\w.-]*==[\w.]+)\s*$", text, re.MULTILINE))


def test_conda_file_has_the_same_pins():
    required = pins((REPO / "requirements.txt").read_text())
    assert required and pins((REPO / "e.yml").read_text()) == required


def test_every_pin_is_exact():
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z][\w.-]*==[\w.]+", line.strip()), line


def test_makefile_links_every_tool():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^TOOLS := " + " ".join(TOOLS) + "$", makefile, re.MULTILINE)
    assert {p.name for p in (REPO / "tools").iterdir()} == set(TOOLS)
