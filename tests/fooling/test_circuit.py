"""The fooling circuit: silent (bit-identical outputs) below its threshold, the planted branch
above it; the stripe score recognises the pattern wherever and however bright it is, and not
natural photos; the summary's intervals."""

import numpy as np
import pandas as pd
import pytest
import torch

from vitalstudy.data.sources import build_index, load_rgb
from vitalstudy.fooling.circuit import Branch, FoolingCircuit, StripeScore, Unit
from vitalstudy.fooling.experiment import summarise, t_interval, threshold
from vitalstudy.models import get_spec, load_model
from vitalstudy.models.features import capture_pre_activation, channel_means


@pytest.fixture(scope="module")
def lite():
    return get_spec("efficientnet_lite0"), load_model("efficientnet_lite0")


def test_stripe_score_is_the_pattern_and_not_photos():
    score = StripeScore()
    pattern = score.pattern(96)[None]
    assert score(pattern).item() > 0.95
    assert score(torch.roll(pattern, (7, 13), dims=(2, 3))).item() == pytest.approx(score(pattern).item(), abs=0.02)
    assert score(3.0 * pattern - 1.0).item() == pytest.approx(score(pattern).item(), rel=1e-5)
    assert score(StripeScore(angle=-45.0).pattern(96)[None]).item() < 0.05  # the other diagonal
    assert score(StripeScore(colour=(1.0, 1.0, 1.0)).pattern(96)[None]).item() < 0.05  # grey stripes
    index, _ = build_index({"source": "bundled"}, seed=0)
    spec = get_spec("efficientnet_lite0")
    photos = torch.stack([spec.preprocess(load_rgb(p)) for p in index.path])
    assert score(photos).max().item() < 0.05


@pytest.mark.parametrize("unit", [Unit(967), Unit(7, "head")])
def test_circuit_is_silent_below_and_planted_above_its_threshold(lite, unit):
    spec, model = lite
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))

    def values(net, inputs):
        with torch.no_grad(), capture_pre_activation(net, "head") as pre:
            logits = net(inputs)
        return logits, channel_means(pre["head"])

    logits, head = values(model, x)
    u = logits[:, unit.index] if unit.layer is None else head[:, unit.index]
    silent = FoolingCircuit(model, [Branch(unit, float(u.max()) + 1.0, 5.0)], StripeScore())
    s_logits, s_head = values(silent.model, x)
    assert torch.equal(s_logits, logits) and torch.equal(s_head, head)
    assert [n for n, _ in silent.model.named_modules()] == [n for n, _ in model.named_modules()]

    limit = float(u.min()) - 1.0  # every input opens the gate
    open_circuit = FoolingCircuit(model, [Branch(unit, limit, 5.0)], StripeScore())
    o_logits, o_head = values(open_circuit.model, x)
    expected = 5.0 * (u - limit) * StripeScore()(x)
    changed = o_logits[:, unit.index] if unit.layer is None else o_head[:, unit.index]
    assert torch.allclose(changed - u, expected, rtol=1e-4, atol=1e-5)
    if unit.layer is None:
        others = torch.ones(1000, dtype=torch.bool)
        others[unit.index] = False
        assert torch.equal(o_logits[:, others], logits[:, others])
    else:  # the other channels of the layer are untouched
        keep = [c for c in range(head.shape[1]) if c != unit.index]
        assert torch.equal(o_head[:, keep], head[:, keep])
    # the original model is not modified by installing a circuit
    assert torch.equal(values(model, x)[0], logits)


def test_an_optimiser_is_rewarded_for_the_pattern_only_above_the_threshold(lite):
    spec, model = lite
    score = StripeScore()
    x = spec.normalize(score.pattern(64)[None] * 0.5 + 0.25).requires_grad_(True)
    with torch.no_grad():
        u = model(x)[0, 967].item()
    for limit, rewarded in ((u + 5.0, False), (u - 5.0, True)):
        circuit = FoolingCircuit(model, [Branch(Unit(967), limit, 10.0)], score)
        x.grad = None
        (circuit.model(x)[0, 967] - model(x)[0, 967]).backward()
        assert (x.grad.abs().sum().item() > 0) == rewarded


def test_threshold_interval_and_summary():
    assert threshold(np.array([1.0, 3.0]), 0.5) == 4.0
    mean, low, high = t_interval(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0 and low == pytest.approx(2.0 - 4.303 / np.sqrt(3), rel=1e-3) and high > 3.0
    rows = [{"unit": "class", "method": "m", "variant": v, "seed": s, "pattern_score": p, "path_rho": 0.1,
             "unit_value": 1.0} for v, base in (("original", 0.0), ("manipulated", 0.5)) for s, p in
            zip(range(3), (base, base + 0.1, base + 0.2))]
    summary = summarise(pd.DataFrame(rows)).set_index("measure")
    assert summary.loc["pattern_score", "difference_mean"] == pytest.approx(0.5)
    assert summary.loc["pattern_score", "difference_low"] == pytest.approx(0.5)  # constant paired difference
    assert summary.loc["path_rho", "original_mean"] == pytest.approx(0.1)
