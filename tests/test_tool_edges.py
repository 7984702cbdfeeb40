"""Every tool's edges come from one base (runkit.cli.run_tool): a bad command line is one usage line and one
error line, exit 2, whatever the tool and however many flags it has; the tool's name is on each message;
RUNKIT_TRACEBACK=1 adds the traceback behind the line."""
import os

import pytest

from conftest import TOOLS, tool


@pytest.mark.parametrize("name", TOOLS)
def test_an_unknown_flag_is_exit_2_in_at_most_three_lines(name, tmp_path):
    proc = tool(name, "--no-such-flag", "a", "b", input="", check=2, cwd=tmp_path)
    lines = proc.stderr.splitlines()
    assert 1 <= len(lines) <= 3 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[-1].startswith(f"{name}: ") and proc.stdout == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", TOOLS)
def test_a_bad_command_line_is_one_usage_line_then_one_error_line_naming_help(name, tmp_path):
    proc = tool(name, "--no-such-flag", input="", check=2, cwd=tmp_path)
    usage, error = proc.stderr.splitlines()
    assert usage.startswith(f"usage: {name} [options]") and error.startswith(f"{name}: ")
    assert error.endswith(f"(see {name} --help)")


def test_the_usage_line_names_the_arguments_the_tool_takes():
    assert tool("plot", "--no-such-flag", input="", check=2).stderr.startswith("usage: plot [options] X\n")
    collect = tool("collect", "--no-such-flag", input="", check=2)
    assert collect.stderr.startswith("usage: collect [options] [DIR ...]\n")
    assert tool("sync", input="", check=2).stderr.startswith("usage: sync [options] SRC DEST\n")


@pytest.mark.parametrize("traceback", [False, True])
def test_runkit_traceback_shows_the_traceback_behind_the_one_line_error(tmp_path, traceback):
    env = dict(os.environ, RUNKIT_TRACEBACK="1") if traceback else {k: v for k, v in os.environ.items()
                                                                     if k != "RUNKIT_TRACEBACK"}
    proc = tool("runbatch", tmp_path / "no_such_specs.jsonl", check=2, env=env)
    assert ("Traceback (most recent call last)" in proc.stderr) == traceback
    assert proc.stderr.strip().splitlines()[-1].startswith("runbatch: "), proc.stderr
