"""What every tool shares at its edges: its arguments' parser, errors and exit codes, JSON lines in and out,
stdin that must be a pipe, RESULTS_DIR, broken pipes, and the tool's name on every message.

A tool adds its arguments and its main (the csvkit pattern):

    def arguments(parser): parser.add_argument(...)
    def main(args): ...
    if __name__ == "__main__":
        cli.run_tool("plot", "Plot Y against X.", EXAMPLE, arguments, main)

Exit codes everywhere: 0 done, 1 the work failed (errors.WorkFailed), 2 bad usage or bad input
(errors.BadInput and every error derived from it: nothing was written). A user sees one line
`tool: message` on stderr (a bad argument: a one-line usage first); RUNKIT_TRACEBACK=1 shows the traceback
too. The library raises and says (say()); only this module names the tool.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any, NoReturn

from runkit.errors import BadInput, WorkFailed

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The tools, one file each in tools/ (installing runkit puts each on PATH: pyproject.toml's script-files).
TOOLS = ("train", "gridgen", "runbatch", "collect", "plot", "sync", "halving", "propose", "report")
LIB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the lib/ this runkit is imported from
_name = [os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "runkit"]  # the running tool's


def name_tool(tool: str) -> None:
    """Name the running tool once: every say() and error line starts with it."""
    _name[0] = tool


def say(text: str, stream: IO[str] | None = None) -> None:
    """One line `tool: text` on stderr (or `stream`), flushed: what the library tells the user."""
    print(f"{_name[0]}: {text}", file=stream or sys.stderr, flush=True)


class BadArguments(BadInput):
    """argparse's complaint about the command line; `usage` is the tool's usage on one line."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class Parser(argparse.ArgumentParser):
    """argparse with the kit's edges: an error is a BadArguments (one usage line, one error line, exit 2)."""

    def __init__(self, prog: str, description: str, epilog: str | None = None) -> None:
        super().__init__(prog=prog, description=description, epilog=epilog,
                         formatter_class=argparse.RawDescriptionHelpFormatter)

    def error(self, message: str) -> NoReturn:
        raise BadArguments(f"{message} (see {self.prog} --help)", self.short_usage())

    def short_usage(self) -> str:
        """`usage: tool [options] ARG ...`: the positionals as argparse writes them, the options summed up."""
        words = []
        for action in self._get_positional_actions():
            name = str(action.metavar or action.dest)
            shapes = {"?": f"[{name}]", "*": f"[{name} ...]", "+": f"{name} [{name} ...]"}
            words.append(shapes.get(str(action.nargs), name))
        return " ".join(["usage:", self.prog, "[options]", *words])


def run_tool(tool: str, description: str, epilog: str | None, arguments: Callable[[Parser], None],
             main: Callable[[argparse.Namespace], int | None], argv: Sequence[str] | None = None) -> NoReturn:
    """A tool's whole edge: its parser (arguments(parser) adds its options), then main(args) as run_main runs it."""
    def parse_and_run(argv: Sequence[str]) -> int | None:
        parser = Parser(tool, description, epilog)
        arguments(parser)
        return main(parser.parse_args(argv))
    run_main(tool, parse_and_run, argv)


def require_pipe(hint: str) -> None:
    """BadInput(hint) when stdin is a terminal: the tool reads a table or specs that must be piped in."""
    if sys.stdin.isatty():
        raise BadInput(hint)


def results_dir() -> str:
    """Where run folders go: $RESULTS_DIR, else ./results."""
    return os.environ.get("RESULTS_DIR") or "results"


def tool_path(tool: str) -> str:
    """tools/TOOL of the checkout this runkit comes from (beside lib/)."""
    return os.path.join(os.path.dirname(LIB), "tools", tool)


def run_main(tool: str, main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> NoReturn:
    """Call `main(argv)` and turn its outcome into an exit status, with one-line errors."""
    name_tool(tool)
    try:
        code = main(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()
    except BadInput as e:
        code = _fail(tool, e, EXIT_USAGE)
    except WorkFailed as e:
        code = _fail(tool, e, EXIT_FAILED)
    except BrokenPipeError:
        # `tool | head` closed our stdout: not an error. Point stdout at devnull so the exit flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    except KeyboardInterrupt:
        code = 130
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        code = _fail(tool, e, EXIT_FAILED, name=True)
    sys.exit(code or 0)


def _fail(tool: str, exc: BaseException, code: int, name: bool = False) -> int:
    if os.environ.get("RUNKIT_TRACEBACK"):
        import traceback
        traceback.print_exception(exc)
    text = f"{type(exc).__name__}: {exc}" if name else first_line(exc)
    if isinstance(exc, BadArguments):
        print(exc.usage, file=sys.stderr)
    print(f"{tool}: {without_addresses(text)}", file=sys.stderr)
    return code


def first_line(error: BaseException) -> str:
    """An error's first line: gin adds lines naming the configurable it was calling; the user needs the first."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# An object's default repr, which names where it lies in memory (gin's "In call to configurable 'optimizer'
# (<function optimizer at 0x7ff1cfc9bce0>)"): in a message, it says nothing the name before it does not.
_IN_PARENTHESES = re.compile(r"\s*\(<[^<>()]* at 0x[0-9a-fA-F]+>\)")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")


def without_addresses(text: str) -> str:
    """A message without the memory addresses of Python objects in it."""
    return _ADDRESS.sub(">", _IN_PARENTHESES.sub("", text))


def open_input(path: str | None) -> IO[str]:
    """A readable text stream for a path, or stdin for '-'; a missing file is BadInput."""
    if path in (None, "-"):
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror}") from None


def read_jsonl(stream: Iterable[str], source: str = "stdin") -> Iterator[dict[str, Any]]:
    """Yield one dict per non-blank line; a line that is not a JSON object is BadInput naming it."""
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInput(f"line {number} of {source} is not JSON ({e.msg}): {_clip(line)}") from None
        if not isinstance(obj, dict):
            raise BadInput(f"line {number} of {source} is not a JSON object: {_clip(line)}")
        yield obj


def write_jsonl(obj: object, stream: IO[str] | None = None) -> None:
    """Write one JSON object as one line and flush, so a pipe's reader sees it at once."""
    stream = stream or sys.stdout
    stream.write(json_line(obj) + "\n")
    stream.flush()


def json_line(obj: object) -> str:
    """Strict JSON on one line: NaN and infinity become null (jq and most parsers reject bare NaN), and
    NumPy scalars and arrays become plain numbers and lists (without importing NumPy)."""
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError):  # the rare slow path: walk the object once
        return json.dumps(plain(obj), separators=(",", ":"), allow_nan=False)


def plain(value: Any) -> Any:
    """What strict JSON can hold: the value with NaN and infinity as None, containers walked, NumPy values
    unwrapped. Every JSON file and line the kit writes goes through it (json_line, runs.write_json)."""
    if isinstance(value, dict):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None  # float(): a numpy.float64 is a float too
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return plain(value.tolist())  # a NumPy scalar's tolist() is its Python number
    return value


def _clip(line: str, width: int = 60) -> str:
    line = line.strip()
    return line if len(line) <= width else line[:width] + "..."
