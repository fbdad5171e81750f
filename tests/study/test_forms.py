"""Stage 4 forms: contract layout, counterbalancing, blinding, determinism, clear errors."""

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from forms_fixtures import METHODS, answer_all, brightness_scorer, build, full_spec, make_run, png_chunks, write_spec
from PIL import Image

from vitalstudy.errors import VitalStudyError
from vitalstudy.study.forms import write_forms
from vitalstudy.study.forms_html import embed_json
from vitalstudy.study.forms_queries import sample_candidates
from vitalstudy.study.spec import load_spec
from vitalstudy.study.submission import validate


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    spec_path, study_dir, manifest = build(tmp_path_factory.mktemp("forms"))
    key = json.loads((study_dir / "private" / "answer_key.json").read_text())
    return study_dir, manifest, key


def test_contract_layout(bundle):
    study_dir, manifest, key = bundle
    forms = study_dir / "forms"
    assert {p.name for p in forms.iterdir()} == {
        "manifest.json", "codebook.csv", "stimuli", "google_form.gs", "index.html",
        "subset-1.html", "subset-2.html", "subset-3.html",
    }
    assert manifest["format"] == "vitalstudy.manifest/1" and re.fullmatch(r"[0-9a-f]{12}", manifest["manifest_version"])
    assert key["format"] == "vitalstudy.answer_key/1" and key["manifest_version"] == manifest["manifest_version"]
    assert set(key["questions"]) == {q["question_id"] for q in manifest["questions"] if q["type"] != "demographics"}
    assert manifest["exclusions"]["straightlining"]["sections"] == ["likert_word"]
    for q in manifest["questions"]:
        assert re.fullmatch(r"[a-z_]+\.([0-9a-f]{10}|gender|age)", q["question_id"]), q["question_id"]
        for s in q["stimuli"]:
            assert (forms / s["file"]).is_file() and s["file"] == f"stimuli/{s['stimulus_id']}.png"
    # the spec's order
    assert [s["section_id"] for s in manifest["sections"]] == [
        "free_label", "likert_word", "likert_references", "two_afc", "demographics"]


def test_latin_square_balances_methods(bundle):
    _, manifest, key = bundle
    free = [q for q in manifest["questions"] if q["type"] == "free_label"]
    by_number = {}
    for q in free:
        by_number.setdefault(q["number"], {})[q["subset"]] = key["questions"][q["question_id"]]["method"]
    for methods in by_number.values():
        assert sorted(methods) == ["1", "2", "3"] and len(set(methods.values())) == 3
    per_subset = Counter((q["subset"], key["questions"][q["question_id"]]["method"]) for q in free)
    assert set(per_subset.values()) == {1}, "3 questions x 3 methods: each subset sees each method once"
    assert all(key["questions"][q["question_id"]]["ground_truth_label"] for q in free)


def test_likert_shows_every_method_once_per_word(bundle):
    _, manifest, key = bundle
    for number in (1, 2):
        qs = [q for q in manifest["questions"] if q["type"] == "likert_word" and q["number"] == number]
        assert sorted(key["questions"][q["question_id"]]["method"] for q in qs) == sorted(METHODS)
        assert len({q["word"] for q in qs}) == 1 and qs[0]["word"] in qs[0]["prompt"]
    refs = [q for q in manifest["questions"] if q["type"] == "likert_references"]
    assert all([s["role"] for s in q["stimuli"]] == ["reference", "reference", "fv"] for q in refs)


def test_two_afc_correct_side_is_the_more_activating_query(bundle):
    _, manifest, key = bundle
    trials = [q for q in manifest["questions"] if q["type"] == "two_afc"]
    assert [f["field"] for f in trials[0]["fields"]] == ["choice", "confidence"]
    catches = [q for q in trials if q["catch"]]
    assert len({q["number"] for q in catches}) == 1 and len(catches) == 3
    for q in trials:
        k = key["questions"][q["question_id"]]
        correct, wrong = (k["query_a"], k["query_b"]) if k["correct_choice"] == "A" else (k["query_b"], k["query_a"])
        # the stand-in scorer ranks img11 highest; references img00-02 are never queries
        assert int(correct[3:]) > int(wrong[3:]) and int(wrong[3:]) >= 3
        roles = Counter(s["role"] for s in q["stimuli"])
        assert roles["query_a"] == roles["query_b"] == 1
        if q["catch"]:
            shown = {s["stimulus_id"] for s in q["stimuli"] if s["role"] == "reference"}
            high = next(s for s in q["stimuli"] if s["role"] == f"query_{k['correct_choice'].lower()}")
            assert high["stimulus_id"] in shown and k["method"] is None
        else:
            assert roles["fv"] == 2  # one per seed
    assert len({key["questions"][q["question_id"]]["correct_choice"] for q in trials}) == 2, "sides vary"


def test_codebook_maps_every_answer_field(bundle):
    study_dir, manifest, _ = bundle
    with (study_dir / "forms" / "codebook.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["column_header"] for r in rows[:4]] == ["participant_id", "subset", "started_at", "submitted_at"]
    fields = {(r["question_id"], r["field"]) for r in rows[4:]}
    assert fields == {(q["question_id"], f["field"]) for q in manifest["questions"] for f in q["fields"]}
    for r in rows[4:]:
        suffix = f" [{r['question_id']}:confidence]" if r["field"] == "confidence" else f" [{r['question_id']}]"
        assert r["column_header"].endswith(suffix)
    gas = (study_dir / "forms" / "google_form.gs").read_text()
    assert all(json.dumps(r["column_header"])[1:-1] in gas for r in rows[4:]), "Google item titles = codebook headers"
    assert "[participant_id]" in gas and "[subset]" in gas


def _served_texts(forms: Path):
    for path in forms.rglob("*"):
        yield path.relative_to(forms).as_posix(), path.read_bytes() if path.is_file() else b""


def test_blinding(bundle):
    study_dir, manifest, key = bundle
    forms = study_dir / "forms"
    hidden = {k["ground_truth_label"] for k in key["questions"].values() if k["ground_truth_label"]}
    hidden -= {q["word"] for q in manifest["questions"] if q["word"]}  # words shown in likert_word are public
    secrets = [*METHODS, *hidden, "answer_key", "correct_choice", "ground_truth"]
    for name, data in _served_texts(forms):
        blob = (name + "\n" + data.decode("latin-1")).lower()
        if not name.endswith((".html", ".png")):  # researcher files, never served: only the format tag may say it
            blob = blob.replace("vitalstudy.manifest/1", "")
        for secret in secrets:
            assert secret.lower() not in blob, f"{name} reveals '{secret}'"
    assert not list(forms.rglob("answer_key*")) and (study_dir / "private" / "answer_key.json").is_file()
    for png in (forms / "stimuli").iterdir():
        assert re.fullmatch(r"s-[0-9a-f]{12}\.png", png.name)
        chunks = png_chunks(png.read_bytes())
        assert set(chunks) <= {"IHDR", "IDAT", "IEND"}, f"{png.name} keeps {chunks}"
        with Image.open(png) as im:
            assert im.mode == "RGB" and not im.info and not im.getexif()


def test_source_pngs_really_carry_method_metadata(tmp_path):
    """Guards the blinding test: the fixtures' sources do name their method, so stripping is tested."""
    run = make_run(tmp_path, methods=["vital"], targets=["n07920052"])
    with Image.open(run / "02_fv/tinynet/vital/n07920052/seed0.png") as im:
        assert im.info.get("method") == "vital"


def test_deterministic_and_key_dependent(tmp_path, monkeypatch):
    monkeypatch.setenv("VITALSTUDY_BLINDING_KEY", "k1")
    outputs = []
    for name in ("a", "b"):
        _, study_dir, manifest = build(tmp_path / name)
        outputs.append({p.relative_to(study_dir).as_posix(): p.read_bytes()
                        for p in study_dir.rglob("*") if p.is_file()})
    # only the answer key records source paths, which differ between the two runs
    moved = {k: v.replace(str(tmp_path / "b").encode(), str(tmp_path / "a").encode()) for k, v in outputs[1].items()}
    assert moved == outputs[0]
    monkeypatch.setenv("VITALSTUDY_BLINDING_KEY", "k2")
    _, _, other = build(tmp_path / "c")
    ids = lambda m: {s["stimulus_id"] for q in m["questions"] for s in q["stimuli"]}  # noqa: E731
    assert not ids(other) & ids(manifest), "stimulus names depend on the secret key"


def test_missing_fv_names_spec_section_and_file(tmp_path):
    run = make_run(tmp_path, methods=["vital", "maco", "fourier"])  # no deepinversion
    spec_path = write_spec(tmp_path, full_spec())
    with pytest.raises(VitalStudyError) as err:
        write_forms(load_spec(spec_path), run, tmp_path / "out", brightness_scorer)
    message = str(err.value)
    assert str(spec_path) in message
    assert "section 'free_label'" in message and "02_fv/tinynet/deepinversion/n07920052/seed0.png" in message
    assert not (tmp_path / "out" / "forms").exists()


def test_method_name_in_texts_is_refused(tmp_path):
    with pytest.raises(VitalStudyError, match="method name 'maco'"):
        build(tmp_path, instructions="Some images were made with MACO.")


def test_too_few_natural_images_for_queries(tmp_path):
    spec = full_spec()
    spec["sections"][3]["query_pool"] = 10
    run = make_run(tmp_path)
    with pytest.raises(VitalStudyError, match=r"section 'two_afc'.*needs 23 natural images.*found 9"):
        write_forms(load_spec(write_spec(tmp_path, spec)), run, tmp_path / "out", brightness_scorer)


def test_study_without_subsets_has_one_form(tmp_path):
    sections = [{"type": "likert_word", "targets": ["n07920052"]}, {"type": "demographics"}]
    _, study_dir, manifest = build(tmp_path, sections=sections, exclusions={"straightlining": None})
    forms = study_dir / "forms"
    assert manifest["subsets"] == [] and not list(forms.glob("subset-*.html"))
    assert 'id="study"' in (forms / "index.html").read_text()
    now = "2026-03-01T10:00:00Z"
    response = {"format": "vitalstudy.response/1", "submission_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                "study_id": "teststudy", "manifest_version": manifest["manifest_version"], "subset": None,
                "participant_id": "x", "started_at": now, "submitted_at": now, "answers": answer_all(manifest, None)}
    assert validate(response, manifest) == response


def test_query_candidates_are_a_seeded_sample_without_reference_only_images():
    rows = [{"image_id": f"i{i}", "pool": "reference" if i % 4 == 0 else "metric"} for i in range(40)]
    sample = sample_candidates(rows, 10, "7:two_afc")
    assert len(sample) == 10 and all(r["pool"] != "reference" for r in sample)
    assert sample == sample_candidates(rows, 10, "7:two_afc") != sample_candidates(rows, 10, "8:two_afc")
    assert len(sample_candidates(rows, 100, "x")) == 30


@pytest.mark.parametrize("study", ["demo", "vital-paper", "holistic-2afc"])
def test_shipped_specs_build(tmp_path, study):
    spec = load_spec(Path(__file__).resolve().parents[2] / "study" / study)
    run = make_run(tmp_path, targets=list(spec.labels), model=spec.model, seeds=spec.seeds, n_natural=20)
    manifest = write_forms(spec, run, tmp_path / "out", brightness_scorer)
    assert manifest["subsets"] == list(spec.subsets)
    assert {q["section_id"] for q in manifest["questions"]} == {s.section_id for s in spec.sections}
    for page in (tmp_path / "out" / "forms").glob("*.html"):
        text = page.read_text().lower()
        assert not [m for m in METHODS if m in text], page.name


def test_embedded_json_round_trips_without_spelling_a_method():
    data = {"study_id": "vital-paper", "format": "vitalstudy.response/1", "note": "MACO and Vital"}
    text = embed_json(data, METHODS)
    assert json.loads(text) == data
    assert not [m for m in METHODS if m in text.lower()]
