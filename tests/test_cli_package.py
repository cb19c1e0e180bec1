"""The command line is a package of its own (scratch_ae/cli/) that the library never imports."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_no_library_module_imports_the_command_line():
    # In a fresh interpreter: import every module of scratch_ae but the command line (and
    # `python -m scratch_ae`, which is the command line), then look at what got imported.
    code = """
import importlib, pkgutil, sys
def modules(package):  # pkgutil.walk_packages would import scratch_ae.cli itself to look inside it
    for m in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if m.name in ("scratch_ae.cli", "scratch_ae.__main__"):
            continue
        try:
            module = importlib.import_module(m.name)
        except ImportError as exc:  # an optional dependency (CuPy) that this machine lacks
            if "cupy" not in str(exc):
                raise
            continue
        yield m.name
        if m.ispkg:
            yield from modules(module)
import scratch_ae
names = list(modules(scratch_ae))
print(len(names), [m for m in sys.modules if m == "scratch_ae.cli" or m.startswith("scratch_ae.cli.")])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    count, imported = done.stdout.split(" ", 1)
    assert int(count) > 30 and imported.strip() == "[]", done.stdout


def test_the_old_module_names_are_gone_and_the_entry_point_is_the_package():
    import importlib.util
    assert importlib.util.find_spec("scratch_ae.model") is None  # Autoencoder lives in scratch_ae.models
    import tomllib
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"scratch-ae": "scratch_ae.cli:main"}
    from scratch_ae import cli
    assert (REPO / "scratch_ae" / "cli" / "__init__.py").exists() and callable(cli.main)


def test_every_command_has_a_module_with_add_parser_and_run():
    from scratch_ae.cli import COMMANDS, build_parser
    assert set(COMMANDS) == {"train", "evaluate", "reconstruct", "search", "lab", "info"}
    assert all(callable(module.add_parser) and callable(module.run) for module in COMMANDS.values())
    assert set(build_parser().subcommands) == set(COMMANDS)


@pytest.mark.parametrize("command", ["train", "evaluate", "reconstruct", "search", "lab"])
def test_engine_is_an_option_of_every_command_that_runs_a_model(command):
    from scratch_ae.cli import build_parser
    from scratch_ae.fast import ENGINES
    actions = {a.dest: a for a in build_parser().subcommands[command]._actions}
    assert tuple(actions["engine"].choices) == tuple(ENGINES)
    assert actions["engine"].default == ("auto" if command in ("train", "search", "lab") else None)


def test_train_records_the_engine_asked_for_and_the_one_that_ran(tmp_path):
    from scratch_ae.cli import main
    from scratch_ae.checkpoint import load_arrays
    out = tmp_path / "r"
    assert main(["train", "--engine", "reference", "--limit", "300", "--epochs", "1", "--no-progress",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["engine"] == {"requested": "reference", "resolved": "reference"}
    assert metrics["config"]["engine"] == "reference"
    assert load_arrays(out / "model.npz")[1]["model"]["engine"] == "reference"


@pytest.mark.parametrize("text, expected", [("3", 3), ("0", None), ("-2", None), ("x", None)])
def test_the_validators_are_written_once_and_say_what_they_expected(text, expected):
    import argparse

    from scratch_ae.cli import validators
    if expected is None:
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected a positive integer, got '{text}'"):
            validators.positive_int(text)
    else:
        assert validators.positive_int(text) == expected
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a fraction in \[0, 1\), got 'nan'"):
        validators.fraction("nan")
