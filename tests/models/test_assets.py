"""The model files a plan hashes, found without torch: the same answers as torch and torchvision."""

import subprocess
import sys

import pytest

from vitalstudy.models.assets import TORCHVISION_WEIGHT_FILES, torch_hub_dir, torchvision_weights, \
    torchvision_weights_file


@pytest.mark.parametrize("variant, member", sorted(TORCHVISION_WEIGHT_FILES))
def test_weight_file_names_are_torchvisions(variant, member):
    from torchvision.models import get_model_weights

    assert TORCHVISION_WEIGHT_FILES[(variant, member)] == get_model_weights(variant)[member].url.rsplit("/", 1)[-1]


def test_every_builtin_torchvision_model_is_in_the_table():
    from vitalstudy.models.registry import REGISTRY

    for spec in REGISTRY.values():
        if spec.family == "torchvision":
            assert torchvision_weights_file(spec) == torchvision_weights(spec).url.rsplit("/", 1)[-1]
            assert (spec.variant, spec.weights) in TORCHVISION_WEIGHT_FILES, spec.name


@pytest.mark.parametrize("env", [{}, {"TORCH_HOME": "/data/th"}, {"XDG_CACHE_HOME": "/xdg"},
                                 {"TORCH_HOME": "~/th", "XDG_CACHE_HOME": "/xdg"}])
def test_hub_dir_is_torchs(env, monkeypatch):
    import torch

    for name in ("TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert str(torch_hub_dir()) == torch.hub.get_dir()


def test_planning_the_paper_imports_no_torch(repo):
    """Validating the paper config and planning its whole DAG (what every dry run does) loads
    neither torch nor torchvision: importing them is most of a dry run's time."""
    code = ("import sys, yaml; from vitalstudy.config import validate; from vitalstudy.workflow import WorkflowPlan; "
            "import vitalstudy.preflight; "
            f"c = validate(yaml.safe_load(open({str(repo / 'config' / 'paper.yaml')!r})), check_paths=False); "
            f"WorkflowPlan(c, spec_root={str(repo / 'study')!r}).all_outputs(); "
            "print(sorted(m for m in ('torch', 'torchvision', 'zennit') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip() == "[]"
