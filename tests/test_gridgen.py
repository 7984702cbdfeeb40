"""gridgen: every feature of the grid format, bad grids, and properties of expansion and naming."""
import json
import os
import re
import textwrap

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import tool
from runkit.sweeps import bindings, grid, grid_file, spec


def gridgen(tmp_path, text, check=0):
    path = tmp_path / "exp" / "grid.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text))
    (tmp_path / "base.gin").touch()
    proc = tool("gridgen", path, check=check)
    return [json.loads(line) for line in proc.stdout.splitlines()] if check == 0 else proc


def test_product_seeds_fixed_and_the_spec_contract(tmp_path, results_dir):
    specs = gridgen(tmp_path, """
        experiment: tune_lr
        configs: [base.gin]
        fixed: {training_loop.n_epochs: 3}
        grid: {optimizer.lr: [1e-3, 0.1], optimizer.name: [sgd, adam]}
        seeds: 2
    """)
    assert [s["name"] for s in specs] == [
        "lr=0.001_name=sgd_seed=0", "lr=0.001_name=adam_seed=0", "lr=0.1_name=sgd_seed=0", "lr=0.1_name=adam_seed=0",
        "lr=0.001_name=sgd_seed=1", "lr=0.001_name=adam_seed=1", "lr=0.1_name=sgd_seed=1", "lr=0.1_name=adam_seed=1"]
    first = specs[0]
    config = str(tmp_path / "base.gin")
    assert first["run_dir"] == str(results_dir / "tune_lr" / first["name"])
    assert first["argv"] == ["train", first["run_dir"], config, "-b", "training_loop.n_epochs=3",
                             "-b", "optimizer.lr=0.001", "-b", "optimizer.name='sgd'", "-b", "training_loop.seed=0"]
    assert first["configs"] == [config] and first["experiment"] == "tune_lr"
    assert first["gin_bindings"] == {"training_loop.n_epochs": 3, "optimizer.lr": 0.001, "optimizer.name": "sgd",
                                 "training_loop.seed": 0}
    assert first["bindings"] == {"lr": 0.001, "name": "sgd", "seed": 0}
    for s in specs:
        spec.check(s, "test")


def test_zip_include_exclude(tmp_path, results_dir):
    specs = gridgen(tmp_path, """
        grid: {optimizer.lr: [0.01, 0.1]}
        zip:
          - {mlp.width: [32, 64], mlp.depth: [1, 2]}
        exclude:
          - {optimizer.lr: 0.1, mlp.width: 64}
        include:
          - {optimizer.lr: 1.0, mlp.width: 8, mlp.depth: 1}
    """)
    assert [s["name"] for s in specs] == ["lr=0.01_width=32_depth=1", "lr=0.01_width=64_depth=2",
                                          "lr=0.1_width=32_depth=1", "lr=1.0_width=8_depth=1"]
    assert specs[0]["experiment"] == "exp"  # the grid file's folder


def test_include_is_repeated_over_seeds_unless_it_names_one(tmp_path, results_dir):
    specs = gridgen(tmp_path, """
        grid: {optimizer.lr: [0.1]}
        seeds: [3, 4]
        include:
          - {optimizer.lr: 0.5}
          - {optimizer.lr: 0.7, training_loop.seed: 9}
    """)
    assert [s["name"] for s in specs] == ["lr=0.1_seed=3", "lr=0.1_seed=4", "lr=0.5_seed=3", "lr=0.5_seed=4",
                                          "lr=0.7_seed=9"]


def test_sampling_is_seeded_and_log_uniform(tmp_path, results_dir):
    text = """
        sample:
          n: 20
          seed: 7
          params:
            optimizer.lr: {loguniform: [1e-5, 1e-1]}
            mlp.width: {randint: [16, 64]}
            optimizer.name: {choice: [sgd, adam]}
            mlp.dropout: {uniform: [0.0, 0.5]}
    """
    specs = gridgen(tmp_path, text)
    assert specs == gridgen(tmp_path, text)
    lrs = [s["gin_bindings"]["optimizer.lr"] for s in specs]
    assert all(1e-5 <= lr <= 1e-1 for lr in lrs)
    assert min(lrs) < 1e-3 < max(lrs)  # log-uniform: small values are as likely as large ones
    assert all(16 <= s["gin_bindings"]["mlp.width"] <= 64 for s in specs)
    assert {s["gin_bindings"]["optimizer.name"] for s in specs} == {"sgd", "adam"}
    assert all(str(s["gin_bindings"]["optimizer.lr"]) in s["name"] for s in specs)


def test_command_placeholders(tmp_path, results_dir):
    specs = gridgen(tmp_path, """
        command: [python, eval.py, "--out={run_dir}/x", "{name}", "{bindings}"]
        grid: {a.b: [1, 2]}
    """)
    assert specs[0]["argv"] == ["python", "eval.py", f"--out={specs[0]['run_dir']}/x", "b=1", "-b", "a.b=1"]


def test_from_names_a_source_for_every_run(tmp_path, results_dir):
    """A fine-tuning sweep: each run's argv ends with --from, relative sources under the results folder,
    {name} the run's name; an absolute source is kept as written."""
    specs = gridgen(tmp_path, """
        configs: [base.gin]
        from: pretrain/{name}
        from_state: true
        grid: {optimizer.lr: [0.01, 0.1]}
    """)
    assert [s["argv"][-3:] for s in specs] == [
        ["--from", str(results_dir / "pretrain" / "lr=0.01"), "--from-state"],
        ["--from", str(results_dir / "pretrain" / "lr=0.1"), "--from-state"]]
    specs = gridgen(tmp_path, f"""
        configs: [base.gin]
        from: {tmp_path}/base
        grid: {{optimizer.lr: [0.01]}}
    """)
    assert specs[0]["argv"][-4:] == ["-b", "optimizer.lr=0.01", "--from", f"{tmp_path}/base"]


def test_unsafe_values_make_safe_names(tmp_path, results_dir):
    specs = gridgen(tmp_path, """
        grid: {data.path: ['../x; rm -rf $HOME', 'a b'], data.ref: ['@cnn', '@mlp']}
    """)
    for s in specs:
        assert spec.check_name(s["name"]) and "/" not in s["name"] and ".." not in s["name"]
        assert os.path.dirname(s["run_dir"]) == str(results_dir / "exp")
    assert specs[0]["gin_bindings"]["data.path"] == "../x; rm -rf $HOME"


@pytest.mark.parametrize("text,message", [
    ("grid: {a.b: [1, 2]\n", "YAML syntax error"),
    ("grid: {a.b: [1]}\ngrids: {}\n", "unknown key 'grids'"),
    ("", "a grid file is a YAML mapping"),
    ("grid: {}\n", "makes no runs"),
    ("grid: {a.b: []}\n", "list of values is empty"),
    ("grid: {a.b: [1]}\nexclude: [{a.b: 1}]\n", "makes no runs"),
    ("grid: {a.b: [1, 2]}\ninclude: [{a.b: 1}]\n", "both named 'b=1'"),
    ("grid: {a.b: ['x y', 'x-y']}\n", "both named"),
    ("grid: {lr: [1]}\n", "function.param"),
    ("grid: {a.b: [1]}\nconfigs: [missing.gin]\n", "missing.gin not found"),
    ("grid: {a.b: [1]}\nexclude: [{a.c: 1}]\n", "no axis or fixed binding sets"),
    ("zip: [{a.b: [1, 2], a.c: [1]}]\n", "different lengths"),
    ("sample: {n: 3, params: {a.b: {loguniform: [0, 1]}}}\n", "positive low bound"),
    ("sample: {n: 3, params: {a.b: {normal: [0, 1]}}}\n", "expected one of"),
    ("seeds: -1\ngrid: {a.b: [1]}\n", "seeds:"),
    ("grid:\n  a.b: [1]\n  a.b: [2]\n", "line 3: 'a.b' is written twice"),
    ("grid: {a.b: [1]}\nfrom_state: true\n", "needs a `from` source"),
    ("grid: {a.b: [1]}\nfrom: [a, b]\n", "from: expected a run folder"),
])
def test_bad_grids_exit_2_with_one_line_and_print_nothing(tmp_path, results_dir, text, message):
    proc = gridgen(tmp_path, text, check=2)
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert proc.stderr.startswith("gridgen: ") and "Traceback" not in proc.stderr
    assert os.listdir(results_dir) == []


def test_missing_grid_file(tmp_path):
    proc = tool("gridgen", tmp_path / "nope.yaml", check=2)
    assert "cannot read" in proc.stderr and proc.stdout == ""


# ---- properties ------------------------------------------------------------------------------------

KEYS = st.from_regex(r"[a-z]{1,3}\.[a-z]{1,3}", fullmatch=True)
VALUES = st.one_of(st.integers(-5, 5), st.floats(-10, 10, allow_nan=False).map(lambda x: round(x, 3)),
                   st.sampled_from(["sgd", "adam", "a b", "x/y", "..", "@cnn", ""]), st.booleans())


@settings(max_examples=60, deadline=None)
@given(axes=st.dictionaries(KEYS, st.lists(VALUES, min_size=1, max_size=3, unique_by=repr), min_size=1, max_size=3),
       seeds=st.integers(0, 3))
def test_expansion_is_the_product_and_names_are_safe_and_unique(tmp_path_factory, axes, seeds):
    folder = tmp_path_factory.mktemp("g")
    document = {"grid": axes, **({"seeds": seeds} if seeds else {})}
    try:
        specs = grid.expand(document, str(folder / "grid.yaml"), str(folder / "results"))
    except grid.GridError as e:
        assert "both named" in str(e)  # values that read alike ('a b' and 'a-b') are a clash, never an overwrite
        return
    size = 1
    for values in axes.values():
        size *= len(values)
    assert len(specs) == size * max(seeds, 1)
    names = [s["name"] for s in specs]
    assert len(set(names)) == len(names)
    assert len({s["run_dir"] for s in specs}) == len(specs)
    for s in specs:
        assert spec.check_name(s["name"]) and os.path.basename(s["run_dir"]) == s["name"]
        assert not re.search(r"[/\s;&|$`'\"<>()*?!\\]", s["name"])
        for key, value in s["gin_bindings"].items():
            assert bindings.parse(bindings.format(key, value)) == (key, value)
    assert specs == grid.expand(document, str(folder / "grid.yaml"), str(folder / "results"))


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(st.from_regex(r"([a-z]{1,2}/)?[a-z]{1,2}(\.[a-z]{1,2}){1,2}", fullmatch=True),
                     min_size=1, max_size=5, unique=True))
def test_short_names_are_unambiguous_suffixes(keys):
    short = bindings.short_names(keys)
    assert len(set(short.values())) == len(keys)
    for key, name in short.items():
        assert key.endswith(name)


def test_yaml_float_notation(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("grid: {optimizer.lr: [1e-3, 1E-4, 2.5e+2]}\n")
    assert grid_file.load(str(path))["grid"]["optimizer.lr"] == [0.001, 0.0001, 250.0]
    assert yaml.safe_load("x: 1e-3")["x"] == "1e-3"  # why grid has its own loader


PINNED = "fixed: {training_loop.n_epochs: 2, optimizer.momentum: 0.9, training_loop.seed: 0}\n"
GROWING = [
    PINNED + "grid: {optimizer.lr: [0.1]}\n",  # a sweep of one rate
    PINNED + "grid: {optimizer.lr: [0.1, 0.01]}\n",  # a second rate
    # momentum becomes an axis; its old value stays in fixed
    PINNED + "grid: {optimizer.lr: [0.1, 0.01], optimizer.momentum: [0.9, 0.5]}\n",
    # seeds, the old seed kept in fixed; an include entry
    PINNED + "grid: {optimizer.lr: [0.1, 0.01], optimizer.momentum: [0.9, 0.5]}\nseeds: [0, 1]\n"
             "include: [{optimizer.lr: 1.0}]\n",
]


def test_a_growing_grid_keeps_every_run_it_had(tmp_path, results_dir):
    before = {}
    for n, text in enumerate(GROWING):
        now = {s["name"]: s for s in gridgen(tmp_path, text)}
        assert len(now) > len(before) or n == 0
        for name, old in before.items():  # the same folder, made from the same bindings
            assert name in now, (n, name, sorted(now))
            assert now[name]["run_dir"] == old["run_dir"] and now[name]["gin_bindings"] == old["gin_bindings"]
        before = now
    assert sorted(before) == ["lr=0.01", "lr=0.01_momentum=0.5", "lr=0.01_momentum=0.5_seed=1", "lr=0.01_seed=1",
                              "lr=0.1", "lr=0.1_momentum=0.5", "lr=0.1_momentum=0.5_seed=1", "lr=0.1_seed=1",
                              "lr=1.0", "lr=1.0_seed=1"]
    assert before["lr=0.1"]["bindings"] == {"lr": 0.1, "momentum": 0.9, "seed": 0}


def test_an_axis_of_one_value_names_the_run(tmp_path, results_dir):
    specs = gridgen(tmp_path, "grid: {optimizer.lr: [0.1], optimizer.name: [sgd]}\nseeds: 1\n")
    assert [s["name"] for s in specs] == ["lr=0.1_name=sgd_seed=0"]


def doc_snippets(path):
    """The YAML blocks (indented by 4) of a markdown file that are grid files."""
    blocks, block = [], []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for line in text.splitlines() + ["(end)"]:
        if line.startswith("    ") or (block and not line.strip()):
            block.append(line[4:])
            continue
        if block:
            blocks.append("\n".join(block).strip() + "\n")
        block = []
    loaded = [(text, yaml.safe_load(text)) for text in blocks]
    return [text for text, obj in loaded if isinstance(obj, dict) and set(obj) <= set(grid_file.KEYS)]


DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "grid.md")


def test_every_grid_snippet_of_the_docs_expands_and_names_real_bindings(tmp_path, results_dir):
    from conftest import REPO
    from runkit.training import components, config
    from runkit.training.errors import ConfigError
    (tmp_path / "configs").symlink_to(REPO / "configs")
    snippets = doc_snippets(DOC)
    assert len(snippets) >= 7
    for number, text in enumerate(snippets):
        folder = tmp_path / f"snippet{number}"
        folder.mkdir()
        (folder / "grid.yaml").write_text(text)
        specs = [json.loads(line) for line in tool("gridgen", folder / "grid.yaml", check=0).stdout.splitlines()]
        for s in specs:
            if s["argv"][0] != "train":
                continue  # a command of the user's own: its bindings are not ours to check
            configs = s["configs"] or [str(REPO / "configs" / "digits_mlp.gin")]
            try:
                config.parse(configs, [bindings.format(k, v) for k, v in s["gin_bindings"].items()], components.register)
            except ConfigError as e:
                pytest.fail(f"docs/grid.md snippet {number + 1}: {e}\n{text}")
