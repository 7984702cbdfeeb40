"""What a request changes in a run folder: each binding whose value differs between what made the folder and
what is asked now, said as 'name: old -> new' ('(unset)' for a side that does not bind it). One rule, used by
train (bindings.json against its config: runkit.training.train) and by the runners (spec.json against the
spec: runkit.sweeps.spec); each names the bindings whose change continues the run instead of refusing it."""
from __future__ import annotations

import json
from typing import Any

from runkit.sweeps import bindings

UNSET = object()  # a side that does not bind the name
CONTINUABLE = "training_loop.n_epochs"  # more of it continues a finished run; train resumes it
# What may change between train's attempts of one run: more epochs continues a finished run; another number
# of devices or nodes continues it approximately (runkit.training.world).
RESUMABLE = (CONTINUABLE, "trainer.devices", "trainer.num_nodes")


def same(a: Any, b: Any) -> bool:
    """Equal as JSON says them; UNSET equals only itself."""
    return a is b or (a is not UNSET and b is not UNSET and
                      json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True))


def said(key: str, a: Any, b: Any) -> str:
    """'name: old -> new', as a refusal names a change."""
    return f"{key}: {_show(a)} -> {_show(b)}"


def differences(old: dict[str, Any], new: dict[str, Any], allowed: tuple[str, ...] = ()) -> list[str]:
    """Each binding that differs between `old` and `new` ({name: value}), but those `allowed` to, as said()."""
    return [said(key, old.get(key, UNSET), new.get(key, UNSET)) for key in sorted(set(old) | set(new))
            if key not in allowed and not same(old.get(key, UNSET), new.get(key, UNSET))]


def _show(value: Any) -> str:
    return "(unset)" if value is UNSET else bindings.format_value(value)
