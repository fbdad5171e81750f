"""Blinding against an attacker who has the public spec and code but not the study's secret key.

The attacker rebuilds the bundle as the code would (with every key but the real one, and with the
old seed-only derivation), matches questions by what the page shows (section, Q number, subset,
position) or by the target itself, and predicts method and correct 2AFC side: the hit rate must be
chance. With the key, the bundle is rebuilt byte for byte. Stimulus files carry no method
information in their size, dimensions, name or order.
"""

import json
import random
import re
import shutil
import stat
from collections import Counter
from pathlib import Path
from string import ascii_lowercase

import numpy as np
import pytest
from forms_fixtures import brightness_scorer, build, full_spec, make_run, png_chunks, write_spec
from PIL import Image

from vitalstudy.study.forms import build_manifest, write_forms
from vitalstudy.study.spec import load_spec

ATTACKER_KEYS = [f"guess-{i}" for i in range(12)]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    run = make_run(root)
    spec = load_spec(write_spec(root, full_spec()))
    return spec, run, root


def plan(spec, run, private_dir, key, monkeypatch):
    monkeypatch.setenv("VITALSTUDY_BLINDING_KEY", key)
    manifest, answer_key, _ = build_manifest(spec, run, private_dir, brightness_scorer)
    return manifest, answer_key


def shown(manifest):
    """question id -> what a participant sees of its place: (section, number, subset, rank in question)."""
    out, rank = {}, Counter()
    for q in manifest["questions"]:
        group = (q["section_id"], q["number"], q["subset"])
        out[q["question_id"]] = (*group, rank[group])
        rank[group] += 1
    return out


def by_target(manifest, key):
    """question id -> (section, target, subset, rank): the attacker who recognises the target."""
    out, rank = {}, Counter()
    for q in manifest["questions"]:
        if q["question_id"] not in key["questions"]:
            continue
        group = (q["section_id"], key["questions"][q["question_id"]]["target"], q["subset"], q["number"])
        out[q["question_id"]] = (*group[:3], rank[group])
        rank[group] += 1
    return out


def score(real, real_key, predictions, coordinates) -> Counter:
    """Hits and chance expectation of predictions {coordinates: answer-key entry} against the real key.
    Chance is 1/M for a method (M methods in the section: the design shows each equally often) and
    1/2 for a 2AFC side (balanced, the odd one out by a keyed coin)."""
    n_methods = Counter()
    for qid, k in real_key["questions"].items():
        if k["method"]:
            n_methods[qid.split(".")[0], k["method"]] = 1
    per_section = Counter(section for section, _ in n_methods)
    out = Counter()
    for qid, where in coordinates.items():
        truth, guess = real_key["questions"].get(qid), predictions.get(where)
        if truth is None or guess is None:
            continue
        if truth["method"]:
            out["method_hits"] += guess["method"] == truth["method"]
            out["method_chance"] += 1 / per_section[where[0]]
        if truth["correct_choice"]:
            out["side_hits"] += guess["correct_choice"] == truth["correct_choice"]
            out["side_chance"] += 0.5
    return out


def old_public_derivation(spec, manifest):
    """What the code before keyed counterbalancing derived from the public seed alone, keyed by what
    the page shows: {(section, number, subset, rank): {method, correct_choice}}."""
    out = {}
    for section in spec.sections:
        if section.type == "demographics":
            continue
        rng = random.Random(f"{spec.seed}:{section.section_id}")
        sides = [n % 2 == 0 for n in range(len(section.targets) + section.catch_trials)]
        rng.shuffle(sides)
        items = [(i, False) for i in range(len(section.targets))]
        items += [(c, True) for c in range(section.catch_trials)]
        if section.shuffle:
            rng.shuffle(items)
        for number, (i, catch) in enumerate(items, 1):
            side = "A" if sides[number - 1] else "B"
            if section.latin:
                for s, subset in enumerate(spec.subsets):
                    method = None if catch else section.methods[(i + s) % len(section.methods)]
                    out[section.section_id, number, subset, 0] = {"method": method, "correct_choice": side}
            elif not catch:
                methods = list(section.methods)
                rng.shuffle(methods)
                for rank, m in enumerate(methods):
                    out[section.section_id, number, None, rank] = {"method": m, "correct_choice": None}
    return out


def test_attacker_without_the_key_scores_chance(study, tmp_path, monkeypatch):
    """Each of several studies (real keys) attacked with every other key and with the old derivation."""
    spec, run, _ = study
    bundles = [plan(spec, run, tmp_path / k, k, monkeypatch) for k in ATTACKER_KEYS]
    other_keys, old = Counter(), Counter()
    for i, (real, real_key) in enumerate(bundles):
        for j, (manifest, key) in enumerate(bundles):
            if i == j:
                continue
            for attacker, real_place in ((shown(manifest), shown(real)),
                                         (by_target(manifest, key), by_target(real, real_key))):
                predictions = {where: key["questions"][qid] for qid, where in attacker.items() if qid in key["questions"]}
                other_keys += score(real, real_key, predictions, real_place)
        old += score(real, real_key, old_public_derivation(spec, real), shown(real))
    for totals in (other_keys, old):
        assert totals["method_chance"] > 50 and totals["side_chance"] > 20, totals
        # chance: ~30 % for a method, 50 % for a side; the old seed-only derivation scored 100 %
        assert totals["method_hits"] <= 1.25 * totals["method_chance"], totals
        assert totals["side_hits"] <= 1.25 * totals["side_chance"], totals


def test_question_ids_and_numbers_carry_no_assignment(study, tmp_path, monkeypatch):
    spec, run, _ = study
    manifest, key = plan(spec, run, tmp_path / "k", "some-key", monkeypatch)
    other, _ = plan(spec, run, tmp_path / "k2", "another-key", monkeypatch)
    ids = [q["question_id"] for q in manifest["questions"] if q["type"] != "demographics"]
    assert all(re.fullmatch(r"[a-z_]+\.[0-9a-f]{10}", qid) for qid in ids)
    assert not set(ids) & {q["question_id"] for q in other["questions"]}, "ids depend on the key"
    # sorted ids do not follow presentation order (a keyed hash, not a counter)
    order = [q["question_id"] for q in manifest["questions"] if q["type"] == "likert_word"]
    assert sorted(order) != order


def test_same_key_reproduces_the_bundle_byte_for_byte(tmp_path, monkeypatch):
    monkeypatch.delenv("VITALSTUDY_BLINDING_KEY", raising=False)
    _, study_dir, manifest = build(tmp_path / "a")
    key_file = study_dir / "private" / "blinding.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, "the key is created owner-only"
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    first = {p.relative_to(study_dir).as_posix(): p.read_bytes() for p in study_dir.rglob("*") if p.is_file()}
    shutil.rmtree(study_dir / "forms")
    (study_dir / "private" / "answer_key.json").unlink()
    spec_path = tmp_path / "a" / "study" / "teststudy" / "study.yaml"
    write_forms(load_spec(spec_path), study_dir.parents[1], study_dir, brightness_scorer)
    again = {p.relative_to(study_dir).as_posix(): p.read_bytes() for p in study_dir.rglob("*") if p.is_file()}
    assert again == first
    # a fresh key (a new study) draws a different assignment
    (study_dir / "private" / "blinding.key").unlink()
    rebuilt = write_forms(load_spec(spec_path), study_dir.parents[1], study_dir, brightness_scorer)
    assert rebuilt["manifest_version"] != manifest["manifest_version"]


def test_stimulus_size_dimensions_name_and_order_carry_no_method(tmp_path, monkeypatch):
    """FVs of different resolutions and very different compressibility (flat colour vs noise, as
    Fourier vs DeepInversion) still give files of one size and one shape."""
    monkeypatch.setenv("VITALSTUDY_BLINDING_KEY", "k")
    run = make_run(tmp_path)
    noisy = run / "02_fv" / "tinynet" / "deepinversion"
    for png in noisy.rglob("*.png"):
        pixels = np.random.default_rng(len(str(png))).integers(0, 256, (96, 96, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(png)  # another resolution and incompressible
    study_dir = run / "04_study" / "teststudy"
    write_forms(load_spec(write_spec(tmp_path, full_spec())), run, study_dir, brightness_scorer)
    key = json.loads((study_dir / "private" / "answer_key.json").read_text())
    files = sorted((study_dir / "forms" / "stimuli").iterdir())
    sizes = {p.stat().st_size for p in files}
    assert len(files) > 20 and len(sizes) == 1, sizes
    for png in files:
        assert set(png_chunks(png.read_bytes())) == {"IHDR", "IDAT", "IEND"}
        with Image.open(png) as im:
            assert im.size == (96, 96) and im.mode == "RGB" and not im.info
    # names: a keyed hash; the method's stimuli are spread over the sorted names, not grouped
    method_of = {sid: e["method"] for sid, e in key["stimuli"].items()}
    names = sorted(method_of)
    ranks = {m: [names.index(s) for s in names if method_of[s] == m] for m in ("vital", "maco", "fourier")}
    assert all(max(r) - min(r) > len(names) / 3 for r in ranks.values()), ranks
    # pages reference stimuli by file only: no data URIs, no sizes, no per-method attributes
    for page in (study_dir / "forms").glob("*.html"):
        text = page.read_text()
        images = re.findall(r"<img [^>]*>", text)
        assert "data:" not in text
        assert all(re.fullmatch(r'<img src="stimuli/s-[0-9a-f]{12}\.png" alt="[a-zA-Z ]+" loading="lazy">', i)
                   for i in images), images[:3]
        assert set(re.findall(r'src="([^"]+)"', text)) <= {f"stimuli/{p.name}" for p in files}
    # order: the method at each position of a likert question varies with the key
    positions = Counter()
    for guess in ATTACKER_KEYS[:6]:
        monkeypatch.setenv("VITALSTUDY_BLINDING_KEY", guess)
        m, k, _ = build_manifest(load_spec(write_spec(tmp_path, full_spec())), run, tmp_path / guess, brightness_scorer)
        for q in m["questions"]:
            if q["type"] == "likert_word":
                positions[q["position"], k["questions"][q["question_id"]]["method"]] += 1
    assert all(len({m for (p, m) in positions if p == pos}) >= 3 for pos in ascii_lowercase[:4]), positions


def test_blinding_key_is_created_once_even_when_two_builds_race(tmp_path, monkeypatch):
    monkeypatch.delenv("VITALSTUDY_BLINDING_KEY", raising=False)
    from concurrent.futures import ThreadPoolExecutor

    from vitalstudy.study.forms_stimuli import blinding_key

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: blinding_key(tmp_path / "private"), range(32)))
    assert len(keys) == 1 and len(next(iter(keys))) == 64
    assert Path(tmp_path / "private" / "blinding.key").read_text().strip().encode() in keys
