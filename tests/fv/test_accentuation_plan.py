"""The workflow's plan for accentuations: jobs per model, method and seed; VITAL's jobs read the
accentuated targets' references; a job's stage config carries the entries its ids name."""

import json

from vitalstudy.config import validate
from vitalstudy.fv import accentuation_plan as plan
from vitalstudy.fv.settings import SHARED_KEYS

RAW = {"run": "plan", "seed": 3, "device": "cpu", "images": {"source": "bundled"}, "references": {},
       "models": {"targets": ["efficientnet_lite0"], "weights": {}},
       "targets": {"accentuations": [{"image": "skimage_chelsea", "target": "n07920052"},
                                     {"image": "skimage_coffee", "target": "head_c7"},
                                     {"image": "skimage_rocket", "target": "n07920052", "model": "resnet50"}]},
       "generate": {"methods": ["vital", "accentuation", "vital_accentuation"], "seeds": [0, 1],
                    "vital": {"steps": 5}, "vital_accentuation": {"penalty": 2.0}, "accentuation": {"steps": 4}},
       "metrics": {"bootstrap": {"iterations": 10, "confidence": 0.9}}}
CONFIG = validate(RAW, check_paths=False)  # the plan reads the filled config, as the workflow's is


def test_jobs_inputs_and_settings():
    jobs = plan.accentuation_jobs(CONFIG, ["efficientnet_lite0"])
    assert [(m, s) for _, m, s, _ in jobs] == [("accentuation", 0), ("accentuation", 1), ("vital_accentuation", 0),
                                               ("vital_accentuation", 1)]
    assert jobs[0][3] == ["accent-skimage_chelsea-n07920052", "accent-skimage_coffee-head_c7"]  # not resnet50's
    assert plan.reference_inputs("results/r", CONFIG, "efficientnet_lite0", "accentuation") == []
    assert plan.reference_inputs("results/r", CONFIG, "efficientnet_lite0", "vital_accentuation") == [
        "results/r/01_references/efficientnet_lite0/n07920052.json",
        "results/r/01_references/efficientnet_lite0/head_c7.json"]
    stage = json.loads(plan.generation_stage_config(CONFIG, "vital_accentuation"))
    assert set(stage["generate"]) == {"vital", "vital_accentuation", *SHARED_KEYS} and len(stage["accentuations"]) == 3
    assert json.loads(plan.metrics_stage_config(CONFIG))["bootstrap"]["iterations"] == 10
    assert plan.accentuation_jobs(validate({**RAW, "targets": {"classes": ["n07920052"]}}, check_paths=False),
                                  ["efficientnet_lite0"]) == []
