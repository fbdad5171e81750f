"""Simulated participants: the rater model alone, its export through ingestion, the held-out judge,
and the power analysis."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from responses_fixtures import build_study

from vitalstudy.cli import main
from vitalstudy.study.forms_gas import SUBSET_ITEM
from vitalstudy.study.ingest import ingest
from vitalstudy.study.simulate import (
    Judgement,
    Rater,
    judge_stimuli,
    participants_needed,
    power_curve,
    simulate_export,
    write_judgements,
)

TWO_AFC = {"fields": [{"field": "choice", "kind": "choice", "options": ["A", "B"]},
                      {"field": "confidence", "kind": "likert", "min": 1, "max": 3}], "catch": False}


def judgements_for(manifest: dict, p_true: float = 0.7) -> dict[str, Judgement]:
    return {s["stimulus_id"]: Judgement(p_true, "espresso", ("espresso coffee",))
            for q in manifest["questions"] for s in q["stimuli"] if s["role"] == "fv"}


def test_simulated_export_passes_ingestion_and_exercises_the_exclusions(tmp_path, monkeypatch):
    monkeypatch.setenv("VITALSTUDY_PARTICIPANT_SALT", "s")
    study = build_study(tmp_path / "forms")
    manifest, key = json.loads(study["manifest"].read_text()), json.loads(study["answer_key"].read_text())
    export = tmp_path / "results" / "simulated" / "google_forms_export.csv"
    roles = simulate_export(manifest, key, judgements_for(manifest), 40, seed=3, out=export)
    assert (roles.count("inattentive"), roles.count("straightliner")) == (4, 2)
    assert export.read_bytes().startswith(b"Timestamp,Participant ID [participant_id],"
                                          + SUBSET_ITEM.encode() + b","
                                          b"Q1. How well does the image reflect 'espresso'? [likert_word.q01.a],")
    report = ingest([], [export], study["manifest"], study["codebook"], study["answer_key"], tmp_path / "out")
    assert report["rows"]["read"] == 40 and report["rows"]["quarantined"] == 0 and report["answers"]["quarantined"] == 0
    excluded = report["rows"]["excluded_by_reason"]
    assert excluded.get("straightlining", 0) >= 2 and excluded.get("failed_catch_trials", 0) >= 1
    assert report["participants"]["simulated"] == report["participants"]["accepted"] == 40 - report["rows"]["excluded"]
    for name in ("responses.csv", "exclusions.csv"):
        assert {r["simulated"] for r in csv.DictReader(open(tmp_path / "out" / name))} == {"True"}
    again = tmp_path / "again.csv"
    simulate_export(manifest, key, judgements_for(manifest), 40, seed=3, out=again)
    assert again.read_bytes() == export.read_bytes()  # same seed, same bytes


def test_likert_ratings_rise_with_the_held_out_confidence():
    rng = np.random.default_rng(0)
    spec = {"min": 1, "max": 5}
    low = [Rater("attentive", rng).likert(spec, 0.1) for _ in range(400)]
    high = [Rater("attentive", rng).likert(spec, 0.9) for _ in range(400)]
    assert np.mean(high) - np.mean(low) > 2.0
    assert set(low) | set(high) <= {1, 2, 3, 4, 5}


def test_two_afc_accuracy_rises_with_confidence():
    rng = np.random.default_rng(1)
    answers = [Rater("attentive", rng).two_afc(TWO_AFC, "A", p) for p in rng.uniform(0, 1, 4000)]
    accuracy = {c: np.mean([a["choice"] == "A" for a in answers if a["confidence"] == c]) for c in (1, 2, 3)}
    assert accuracy[1] < accuracy[2] < accuracy[3]
    assert 0.45 < accuracy[1] < 0.7 and accuracy[3] > 0.85


def test_free_labels_name_the_top_class_when_the_model_is_sure():
    rng = np.random.default_rng(2)
    sure = Judgement(1.0, "tabby cat", ("tabby",))
    unsure = Judgement(0.0, "tabby cat", ("tabby",))
    named = [Rater("attentive", rng).free_label(sure) for _ in range(300)]
    vague = [Rater("attentive", rng).free_label(unsure) for _ in range(300)]

    def close(texts):
        return np.mean([t in ("tabby cat", "tabby") or t[:3] in ("tab", "tbb") for t in texts])

    assert close(named) > 0.9 > 0.3 > close(vague)
    assert "tabby" in named and any(t not in ("tabby cat", "tabby") and t.startswith("t") for t in named)  # typos occur


def test_power_grows_with_participants_and_is_alpha_without_an_effect():
    sizes = [5, 10, 20, 40]
    curve = power_curve(0.4, items=10, participants=sizes, reps=300, seed=0)
    power = [row["power"] for row in curve]
    assert power == sorted(power) and power[-1] > 0.9 and power[0] < 0.8
    assert participants_needed(curve, 0.8) in sizes[1:]
    null = power_curve(0.0, items=10, participants=[30], reps=600, seed=1)[0]["power"]
    assert null < 0.1


def test_power_command_reads_the_items_per_method_from_the_study(tmp_path, capsys):
    study = build_study(tmp_path / "forms")
    out = tmp_path / "power.csv"
    assert main(["responses", "simulate", "--power", "--manifest", str(study["manifest"]), "--answer-key",
                 str(study["answer_key"]), "--effect", "1.0", "--reps", "100", "--max-participants", "30",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert [int(r["participants"]) for r in rows] == [5, 10, 15, 20, 25, 30]
    assert "(2 items per method" in capsys.readouterr().out  # two words, each rated once per method


def test_simulated_exports_never_go_under_study(tmp_path, monkeypatch, capsys):
    study = build_study(tmp_path / "forms")
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "study" / "demo" / "responses" / "sim.csv"
    assert main(["responses", "simulate", "--manifest", str(study["manifest"]), "--answer-key",
                 str(study["answer_key"]), "--judgements", "unused.csv", "--out", str(target)]) == 1
    assert "never under study/" in capsys.readouterr().err and not target.exists()


def test_simulation_without_a_held_out_model_names_the_config_key(tmp_path, capsys):
    study = build_study(tmp_path / "forms")
    assert main(["responses", "simulate", "--manifest", str(study["manifest"]), "--answer-key",
                 str(study["answer_key"]), "--out", str(tmp_path / "results" / "sim.csv")]) == 1
    assert "models.held_out" in capsys.readouterr().err


@pytest.mark.slow
def test_held_out_model_judges_real_photos(tmp_path, monkeypatch):
    """EfficientNet-Lite2 (real ImageNet weights, offline) on scikit-image's photos: the espresso photo
    is espresso, the cat photo is not."""
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    study = build_study(tmp_path / "forms")
    manifest, key = json.loads(study["manifest"].read_text()), json.loads(study["answer_key"].read_text())
    (tmp_path / "forms" / "stimuli").mkdir()
    photos = {"coffee": Image.fromarray(skimage_data.coffee()), "cat": Image.fromarray(skimage_data.chelsea())}
    for q in manifest["questions"]:
        for s in q["stimuli"]:
            photo = "cat" if s["stimulus_id"] in ("s-q01b", "s-q02a", "s-q02b") else "coffee"
            photos[photo].save(tmp_path / "forms" / s["file"])
    judgements = judge_stimuli(manifest, key, tmp_path / "forms")
    assert judgements["s-q01a"].top1_label == "espresso" and judgements["s-q01a"].p_true > 0.5
    assert judgements["s-q01b"].p_true < 0.05  # a cat, judged against 'espresso'
    assert judgements["s-q02a"].p_true > judgements["s-q01b"].p_true  # a cat, judged against 'tabby cat'
    write_judgements(tmp_path / "j.csv", judgements, "efficientnet_lite2")
    export = tmp_path / "export.csv"
    assert main(["responses", "simulate", "--manifest", str(study["manifest"]), "--answer-key",
                 str(study["answer_key"]), "--judgements", str(tmp_path / "j.csv"), "--participants", "6",
                 "--out", str(export)]) == 0
    assert len(export.read_text().splitlines()) == 7
    assert (tmp_path / "_provenance" / "simulate.json").exists()
