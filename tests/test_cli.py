"""The `vitalstudy` command's one scheme: a stage's commands live in its package's cli.py, each module maps
its command names to (add_arguments, run) in COMMANDS, and the top-level table lists every one of them."""

import importlib
from pathlib import Path

import pytest

import vitalstudy
from vitalstudy.cli import SUBCOMMANDS, build_parser, command

SRC = Path(vitalstudy.__file__).parent


def test_every_command_module_is_a_package_cli_or_a_core_module():
    assert not sorted(p.name for p in SRC.rglob("*_cli.py"))
    for name, (module, _) in SUBCOMMANDS.items():
        parts = module.split(".")
        assert parts[-1] == "cli" or len(parts) == 2, f"{name}: {module}"


def test_the_table_and_the_modules_name_the_same_commands():
    for module in {m for m, _ in SUBCOMMANDS.values()}:
        for name in importlib.import_module(module).COMMANDS:
            assert SUBCOMMANDS[name][0] == module, f"{module} holds {name!r}, the table points elsewhere"
    for name in SUBCOMMANDS:
        add_arguments, run = command(name)
        assert callable(add_arguments) and callable(run)


def test_every_command_builds_its_own_arguments():
    for name in SUBCOMMANDS:
        parser = build_parser(load=name)
        with pytest.raises(SystemExit) as stop:
            parser.parse_args([name, "--help"])
        assert stop.value.code == 0


def test_forms_and_serve_have_their_own_argument_sets():
    forms = build_parser(load="forms").parse_args(["forms", "--spec", "s.yaml", "--run", "results/r"])
    assert (forms.spec, forms.run, forms.out) == (Path("s.yaml"), Path("results/r"), None)
    serve = build_parser(load="serve").parse_args(["serve", "--forms", "f", "--db", "d.sqlite", "--port", "0"])
    assert (serve.forms, serve.db, serve.port, serve.host) == (Path("f"), Path("d.sqlite"), 0, "127.0.0.1")
    with pytest.raises(SystemExit):
        build_parser(load="forms").parse_args(["forms", "--forms", "f", "--db", "d.sqlite"])
    with pytest.raises(SystemExit):
        build_parser(load="serve").parse_args(["serve", "--spec", "s.yaml", "--run", "results/r"])
