"""The method registry (vitalstudy.fv.registry): the one home of every fact about a method."""

import subprocess
import sys

import pytest

from vitalstudy.errors import ConfigError, VitalStudyError
from vitalstudy.fv.registry import METHODS, MethodSpec, get_method, not_applicable, reference_methods, register
from vitalstudy.models import get_spec


def test_every_implementation_imports_and_builds_plans():
    for spec in METHODS.values():
        cls = spec.method_class()
        assert callable(getattr(cls, "plan")) and callable(getattr(cls, "group_key")), spec.name


def test_facts_the_rest_of_the_project_reads():
    assert list(METHODS)[:2] == ["vital", "vital_lrp"]  # the paper's order: VITAL first
    assert reference_methods() == ("vital", "vital_lrp")
    assert get_method("vital_lrp").section == "vital" and get_method("maco").section == "maco"
    assert [m for m in METHODS if get_method(m).serves("neuron")] == ["vital", "vital_lrp", "maco", "fourier", "fourier_lucid"]
    assert len({m.palette_index for m in METHODS.values()}) == len({m.marker for m in METHODS.values()}) == len(METHODS)


def test_applicability_names_the_reason():
    vit, resnet = get_spec("vit_l_16"), get_spec("resnet50")
    assert "BatchNorm" in not_applicable("deepinversion", vit, "class")
    assert "inner-neuron" in not_applicable("deepinversion", resnet, "neuron")
    assert "LRP" in not_applicable("vital_lrp", vit, "neuron")
    assert not_applicable("vital", vit, "concept") is None
    assert "concept" in not_applicable("fourier", resnet, "concept")


def test_registry_refuses_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="twice"):
        register(METHODS["vital"])
    with pytest.raises(ValueError, match="palette index 0"):
        register(MethodSpec("other", "x:Y", "O", "O", "o", 0, ("class",)))
    with pytest.raises(ValueError, match="target kinds"):
        MethodSpec("other", "x:Y", "O", "O", "o", 9, ("pixel",))
    with pytest.raises(VitalStudyError, match="unknown method 'nope'; known: vital, vital_lrp"):
        get_method("nope")


def test_config_names_an_unknown_method():
    import yaml

    from vitalstudy.config import validate

    config = yaml.safe_load(open("config/config.yaml"))
    config["generate"]["methods"] = ["vital", "lucid"]
    with pytest.raises(ConfigError, match=r"generate.methods\[1\]: unknown method 'lucid'; known: vital, "):
        validate(config, check_paths=False)


def test_facts_import_without_torch():
    """Figures, metric tables and the workflow's planning read the registry without loading torch."""
    code = ("import sys, vitalstudy.fv.registry, vitalstudy.fv.settings, vitalstudy.figures.methods; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
