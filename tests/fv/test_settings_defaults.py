"""One home per default: a method's settings come filled from the schema (config.schema.yaml), so the
FV code reads `cfg[key]` and never restates a default with `cfg.get(key, default)`."""

import ast
from pathlib import Path

import pytest

import vitalstudy.fv
from vitalstudy.config import schema
from vitalstudy.fv.registry import METHODS, get_method
from vitalstudy.fv.settings import default_method_config

FV = Path(vitalstudy.fv.__file__).parent


def defaulted_keys(node: dict) -> set[str]:
    """Every property name under `node` (recursively) that the schema gives a default."""
    keys = set()
    for name, prop in node.get("properties", {}).items():
        if "default" in prop:
            keys.add(name)
        keys |= defaulted_keys(prop)
    return keys


def get_calls(source: str) -> list[tuple[int, str]]:
    """(line, key) of every `<x>.get("<key>", ...)` call."""
    return [(node.lineno, node.args[0].value) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)]


def test_the_scan_sees_a_restated_default():
    assert get_calls('decay = float(cfg.get("decay", 1.5))\nx = cfg["decay"]') == [(1, "decay")]
    assert "centre_std" in defaulted_keys(schema()["properties"]["generate"])


def test_fv_code_reads_method_settings_from_the_filled_config():
    keys = defaulted_keys(schema()["properties"]["generate"])
    found = [f"{path.name}:{line}: .get({key!r})" for path in sorted(FV.glob("*.py"))
             for line, key in get_calls(path.read_text(encoding="utf-8")) if key in keys]
    assert not found, "settings the schema fills, read with a code default:\n" + "\n".join(found)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_gets_all_its_settings_from_the_schema(method):
    config = default_method_config(method)
    section = schema()["properties"]["generate"]["properties"][get_method(method).section]
    given = set(config) | {k for v in config.values() if isinstance(v, dict) for k in v}
    assert defaulted_keys(section) <= given
