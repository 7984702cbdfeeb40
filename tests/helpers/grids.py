"""The grid file of a sweep of real `train` runs (docs/sweeps.md), written once for the tests that train one:
an experiment over one of the repository's gin configs, fixed bindings, the grid's axes, seeds."""
from pathlib import Path

CONFIGS = Path(__file__).resolve().parent.parent.parent / "configs"


def train_grid(path, experiment, fixed=None, grid=None, seeds=None, config="digits_mlp.gin"):
    """Write the grid file `path` (fixed and grid: {binding: value}, grid's values lists) and return it."""
    lines = [f"experiment: {experiment}", f"configs: [{CONFIGS / config}]"]
    lines += [f"{key}: {_yaml(value)}" for key, value in (("fixed", fixed), ("grid", grid), ("seeds", seeds))
              if value is not None]
    path.write_text("\n".join(lines) + "\n")
    return path


def _yaml(value):
    """A YAML flow value: {k: v, ...}, [a, ...], or the scalar as Python writes it."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, range)):
        return "[" + ", ".join(map(_yaml, value)) + "]"
    return str(value)
