"""What every tool shares at its edges: errors and exit codes, JSON lines in and out, broken pipes.

Exit codes everywhere: 0 done, 1 the work failed (errors.WorkFailed), 2 bad usage or bad input
(errors.BadInput and every error derived from it: nothing was written). A user sees one line
`tool: message` on stderr; RUNKIT_TRACEBACK=1 shows the traceback too.
"""
import json
import math
import os
import re
import sys

from runkit.errors import BadInput, WorkFailed

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run_main(tool, main, argv=None):
    """Call `main(argv)` and turn its outcome into an exit status, with one-line errors."""
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


def _fail(tool, exc, code, name=False):
    if os.environ.get("RUNKIT_TRACEBACK"):
        import traceback
        traceback.print_exception(exc)
    text = f"{type(exc).__name__}: {exc}" if name else first_line(exc)
    print(f"{tool}: {without_addresses(text)}", file=sys.stderr)
    return code


def first_line(error):
    """An error's first line: gin adds lines naming the configurable it was calling; the user needs the first."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# An object's default repr, which names where it lies in memory (gin's "In call to configurable 'optimizer'
# (<function optimizer at 0x7ff1cfc9bce0>)"): in a message, it says nothing the name before it does not.
_IN_PARENTHESES = re.compile(r"\s*\(<[^<>()]* at 0x[0-9a-fA-F]+>\)")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")


def without_addresses(text):
    """A message without the memory addresses of Python objects in it."""
    return _ADDRESS.sub(">", _IN_PARENTHESES.sub("", text))


def open_input(path):
    """A readable text stream for a path, or stdin for '-'; a missing file is BadInput."""
    if path in (None, "-"):
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror}") from None


def read_jsonl(stream, source="stdin"):
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


def write_jsonl(obj, stream=None):
    """Write one JSON object as one line and flush, so a pipe's reader sees it at once."""
    stream = stream or sys.stdout
    stream.write(json_line(obj) + "\n")
    stream.flush()


def json_line(obj):
    """Strict JSON on one line: NaN and infinity become null (jq and most parsers reject bare NaN), and
    NumPy scalars and arrays become plain numbers and lists (without importing NumPy)."""
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError):  # the rare slow path: walk the object once
        return json.dumps(plain(obj), separators=(",", ":"), allow_nan=False)


def plain(value):
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


def _clip(line, width=60):
    line = line.strip()
    return line if len(line) <= width else line[:width] + "..."
