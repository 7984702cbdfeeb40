"""The docs' pipelines, as a user types them: real processes joined by real pipes (bash -o pipefail)."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import DOCS, TOOLS, requires

JOB = Path(__file__).parent / "jobs" / "lr_bowl.py"
GRID = f"""\
experiment: bowl
command: [{sys.executable}, {JOB}, "{{run_dir}}", "{{bindings}}"]
grid:
  optimizer.lr: [0.001, 0.01, 0.1, 1.0]
seeds: 2
"""


def sh(script, cwd, check=0):
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == check, f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_gridgen_runbatch_collect_plot(tmp_path, results_dir):
    (tmp_path / "grid.yaml").write_text(GRID)
    out = sh("gridgen grid.yaml | runbatch -j 2", tmp_path).stdout
    assert sorted(json.loads(line)["status"] for line in out.splitlines()) == ["finished"] * 8
    proc = sh("collect $RESULTS_DIR/bowl | plot lr -o lr.png", tmp_path)
    assert proc.stdout.splitlines()[1].split()[0] == "0.1"  # the bowl's optimum
    assert (tmp_path / "lr.png").exists()
    again = sh("gridgen grid.yaml | runbatch -j 2", tmp_path).stdout
    assert {json.loads(line)["reason"] for line in again.splitlines()} == {"finished"}  # nothing reran
    curves = sh("collect --history $RESULTS_DIR/bowl | plot epoch --hue optimizer.lr --term -o c.png", tmp_path)
    assert "a: optimizer.lr=0.001" in curves.stdout


@requires("jq")
def test_jq_selects_runs_between_gridgen_and_runbatch(tmp_path, results_dir):
    (tmp_path / "grid.yaml").write_text(GRID)
    proc = sh("gridgen grid.yaml | jq -c 'select(.bindings.seed == 1)' | runbatch --dry-run", tmp_path)
    names = [json.loads(line)["name"] for line in proc.stdout.splitlines()]
    assert names == [f"lr={lr}_seed=1" for lr in ("0.001", "0.01", "0.1", "1.0")]
    assert list(results_dir.iterdir()) == []
    sh("gridgen grid.yaml | jq -c 'select(.bindings.seed == 1)' | runbatch | collect | plot lr -o p.png", tmp_path)
    assert len(list((results_dir / "bowl").iterdir())) == 4


def test_bad_input_in_the_middle_of_a_pipe_stops_it(tmp_path, results_dir):
    proc = sh("echo 'lr=0.1' | runbatch", tmp_path, check=2)
    assert proc.stderr.strip() == "runbatch: line 1 of stdin is not JSON (Expecting value): lr=0.1"


def test_help_shows_the_docs_examples():
    docs = "\n".join(path.read_text() for path in DOCS)
    for tool in TOOLS:
        text = subprocess.run([tool, "--help"], capture_output=True, text=True, check=True).stdout
        block = text.split("examples:\n", 1)[1].split("\n\n", 1)[0]
        examples = [line.strip() for line in block.splitlines() if line.strip()]
        assert examples and all(example in docs for example in examples), (tool, examples)
