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
        assert callable(cls.plan) and callable(cls.group_key), spec.name


def test_facts_the_rest_of_the_project_reads():
    assert list(METHODS)[:2] == ["vital", "vital_lrp"]  # the paper's order: VITAL first
    assert reference_methods() == ("vital", "vital_lrp", "vital_accentuation")
    assert get_method("vital_lrp").section == "vital_lrp" and get_method("maco").section == "maco"
    assert get_method("vital_lrp").extends == get_method("vital_accentuation").extends == "vital"  # VITAL's, then its own
    assert [m for m in METHODS if get_method(m).serves("accentuation")] == ["accentuation", "vital_accentuation"]
    assert [m for m in METHODS if get_method(m).serves("neuron")] == ["vital", "vital_lrp", "maco", "fourier", "fourier_lucid"]
    assert len({m.palette_index for m in METHODS.values()}) == len({m.marker for m in METHODS.values()}) == len(METHODS)


def test_the_schemas_target_kinds_are_the_registrys():
    from vitalstudy.config import schema
    from vitalstudy.fv.registry import TARGET_KINDS

    items = schema()["properties"]["generate"]["properties"]["target_kinds"]["additionalProperties"]["items"]
    assert tuple(items["enum"]) == TARGET_KINDS


def test_a_methods_settings_go_to_the_sections_that_hold_them():
    """vital_lrp's own section holds its budget; VITAL's keys reach it through generate.vital."""
    from vitalstudy.fv.settings import default_method_config, method_config, sectioned

    assert sectioned("vital_lrp", {"steps": 5, "attribution": "guided_backprop"}) == \
        {"vital_lrp": {"steps": 5}, "vital": {"attribution": "guided_backprop"}}
    assert sectioned("maco", {"steps": 5, "nope": 1}) == {"maco": {"steps": 5, "nope": 1}}  # the schema refuses it
    settings = default_method_config("vital_lrp", steps=5, attribution="guided_backprop")
    assert (settings["steps"], settings["attribution"], settings["warmup"]) == (5, "guided_backprop", 100)
    generate = {"vital": {"steps": 300, "warmup": 15}, "vital_lrp": {"steps": 120}}
    assert method_config(generate, "vital_lrp") == {"steps": 120, "warmup": 15}
    assert method_config(generate, "vital") == {"steps": 300, "warmup": 15}


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


# A toy method, added the way a new method is: its class and one registry entry (here the decorator),
# nothing else. The workflow plans it, metrics and figures know it, and a generation job runs it.
TOY = "toy_fourier"


@pytest.fixture
def toy_method():
    from vitalstudy.fv.fourier import FourierMethod
    from vitalstudy.fv.registry import register_method, unregister

    @register_method(TOY, display="Toy", title="Toy Fourier", marker="P", palette_index=7,
                     target_kinds=("class",), section="fourier")
    class ToyFourier(FourierMethod):
        name = TOY

    yield ToyFourier
    unregister(TOY)


def test_a_toy_method_is_one_registry_entry_and_its_class(toy_method, tmp_path):
    import yaml

    from vitalstudy.config import validate
    from vitalstudy.figures.methods import method_marker, method_name, ordered_methods
    from vitalstudy.figures.style import method_color
    from vitalstudy.fv.generate import run_job
    from vitalstudy.fv.settings import default_method_config, job_settings
    from vitalstudy.metrics.images import planned_images
    from vitalstudy.workflow import WorkflowPlan

    config = yaml.safe_load(open("config/config.yaml"))
    config["generate"]["methods"] = ["vital", TOY]
    config = validate(config, check_paths=False)
    plan = WorkflowPlan(config, spec_root="study")
    toy_jobs = [j for j in plan.generation_jobs if j.method == TOY]
    assert toy_jobs and all(t in config["targets"]["classes"] for j in toy_jobs for t in j.targets)
    assert set(job_settings(config["generate"], TOY)) >= {"fourier"}  # reads generate.fourier
    assert {k.method for k in planned_images(config["generate"], get_spec("efficientnet_lite0"), ["n07920052"],
                                             ["head_c12"])} == {"vital", TOY}
    assert not any(j.method == TOY for j in plan.circuit_jobs)  # it serves classes only
    assert method_name(TOY) == "Toy" and ordered_methods([TOY, "vital"]) == ["vital", TOY]
    assert method_color(TOY) is not None and method_marker(TOY) == "P"

    result = run_job(tmp_path, "efficientnet_lite0", TOY, ["n07920052"], 0,
                     default_method_config(TOY, steps=1), torch_cpu(), batch_size=1, log=lambda *_: None)
    assert result.records[0]["png"]["path"].endswith(f"02_fv/efficientnet_lite0/{TOY}/n07920052/seed0.png")


def torch_cpu():
    import torch

    return torch.device("cpu")
