"""One seeding helper (vitalstudy/seeding.py), and the same draws from it as before it existed.

REGRESSION FIXTURE: the hard-coded values below are NOT expected results of any computation; they are what
main printed (commit 7a042fe, before the call sites moved to the helper) for these calls, recorded so that
this test fails if unifying the seeding changed a run's draws (and with them the demo's bytes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vitalstudy.data.sources import _assign_pools
from vitalstudy.fv.generate import image_generators
from vitalstudy.seeding import SEED_ITSELF, derive_seed, rng, torch_generator
from vitalstudy.study.simulate import Judgement, power_curve, simulate_export

sys.path.insert(0, str(Path(__file__).parent / "study"))


def test_streams_depend_on_the_seed_and_every_key():
    draws = {keys: rng(*keys).random() for keys in [(0, "a"), (1, "a"), (0, "b"), (0, "a", 1), (0, "a", "1", "x")]}
    assert len(set(draws.values())) == len(draws)
    assert rng(0, "a", 1).random() == rng(0, "a", "1").random()  # keys are named by their text
    assert torch.equal(torch.rand(4, generator=torch_generator(3, "m", 2)),
                       torch.rand(4, generator=torch.Generator().manual_seed(derive_seed(3, "m", 2))))


@pytest.mark.parametrize("purpose", sorted(SEED_ITSELF))
def test_the_purposes_that_draw_from_the_seed_itself(purpose):
    assert derive_seed(11, *purpose) == 11
    assert rng(11, *purpose).random() == np.random.default_rng(11).random()


def test_index_pools_draw_as_before():
    frame = pd.DataFrame({"wnid": [w for w in ("n01440764", "n01443537", "n01484850") for _ in range(5)],
                          "split": "none", "image_id": [f"i{k}" for k in range(15)]})
    r, m = "reference", "metric"
    assert _assign_pools(frame, 0.4, 7).tolist() == [r, r, r, m, m, r, r, m, m, r, r, m, r, m, r]


def test_generation_generators_draw_as_before():
    generators = image_generators(5, "efficientnet_lite0", "maco", ["n01440764", "block5_c3"], per=2)
    draws = [torch.rand(2, generator=g).tolist() for g in generators]
    assert draws == [[0.23704302310943604, 0.7295069694519043], [0.7364342212677002, 0.6453249454498291],
                     [0.2235596776008606, 0.8680251240730286], [0.2538411617279053, 0.6651461124420166]]


def test_simulated_participants_and_power_draw_as_before(tmp_path):
    from responses_fixtures import build_study

    assert power_curve(0.5, items=4, participants=[6, 10], reps=50, seed=3) == [
        {"participants": 6, "power": 0.6}, {"participants": 10, "power": 0.72}]
    study = build_study(tmp_path / "forms")
    manifest, key = json.loads(study["manifest"].read_text()), json.loads(study["answer_key"].read_text())
    judgements = {s["stimulus_id"]: Judgement(0.7, "espresso", ("espresso coffee",))
                  for q in manifest["questions"] for s in q["stimuli"] if s["role"] == "fv"}
    roles = simulate_export(manifest, key, judgements, 12, seed=3, out=tmp_path / "export.csv")
    assert roles == ["attentive"] * 7 + ["straightliner"] + ["attentive"] * 3 + ["inattentive"]
