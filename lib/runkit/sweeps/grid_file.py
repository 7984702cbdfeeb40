"""Reading a grid file (docs/grid.md): YAML with numbers as numbers and no key written twice, checked for
unknown keys. What the file means is runkit.sweeps.grid's."""
from __future__ import annotations

import re
from typing import Any

import yaml

from runkit.errors import BadInput

KEYS = ("experiment", "command", "configs", "fixed", "grid", "zip", "sample", "seeds", "seed_binding",
        "include", "exclude", "from", "from_state")


class GridError(BadInput, ValueError):
    """A grid file that cannot be expanded; the message says where and how to fix it."""


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads 1e-3 as a string; a grid of learning rates wants the number."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    """A key written twice (optimizer.lr in two places) is an error, not a silent last-one-wins."""
    seen = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise GridError(f"line {key_node.start_mark.line + 1}: {key!r} is written twice in one mapping")
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                        lambda loader, node: _mapping_without_duplicates(loader, node, deep=True))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."))


def load(path: str) -> dict[str, Any]:
    """The grid file as a dict; GridError for a missing file, a YAML error or unknown keys."""
    try:
        with open(path, encoding="utf-8") as f:
            grid = yaml.load(f, Loader=_Loader)
    except OSError as e:
        raise GridError(f"cannot read {path}: {e.strerror}") from None
    except GridError as e:
        raise GridError(f"{path} {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise GridError(f"{path}{where}: YAML syntax error ({problem})") from None
    if not isinstance(grid, dict):
        raise GridError(f"{path}: a grid file is a YAML mapping with keys {', '.join(KEYS)} (see docs/grid.md)")
    unknown = sorted(set(grid) - set(KEYS))
    if unknown:
        raise GridError(f"{path}: unknown key {unknown[0]!r}; known keys: {', '.join(KEYS)} (see docs/grid.md)")
    return grid
