"""Study specs: the shipped ones load, and every kind of mistake is reported with file and field."""

from pathlib import Path

import pytest
from forms_fixtures import full_spec, write_spec

from vitalstudy.study.spec import StudySpecError, load_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("study", ["vital-paper", "holistic-2afc", "demo"])
def test_shipped_specs_load(study):
    spec = load_spec(REPO / "study" / study / "study.yaml")
    assert spec.study_id == study
    assert spec.subsets, "every shipped study counterbalances methods across subsets"


def test_vital_paper_matches_the_paper():
    spec = load_spec(REPO / "study" / "vital-paper")
    by_type = {s.type: s for s in spec.sections}
    assert len(by_type["likert_word"].targets) == 10
    assert len(by_type["likert_references"].targets) == 10
    assert all(t.startswith("layer4.2_c") for t in by_type["likert_references"].targets)
    assert "deepinversion" not in by_type["likert_references"].methods
    free = by_type["free_label"]
    assert len(free.targets) == 9 and spec.subsets == ("1", "2", "3")
    # Q1 espresso: subset 1 VITAL, subset 2 DeepInversion, subset 3 MACO (appendix D).
    assert spec.labels[free.targets[0]] == "espresso" and not free.shuffle
    assert [free.methods[s % len(free.methods)] for s in range(3)] == ["vital", "deepinversion", "maco"]


def test_holistic_has_4_class_and_9_inner_units():
    spec = load_spec(REPO / "study" / "holistic-2afc")
    counts = [len(s.targets) for s in spec.sections if s.type == "two_afc"]
    assert counts == [4, 9] and spec.exclusions["min_catch_accuracy"] is not None


def test_defaults_are_filled(tmp_path):
    spec = load_spec(write_spec(tmp_path, full_spec()))
    free, likert = spec.sections[0], spec.sections[1]
    assert free.assignment == "latin_square" and likert.assignment == "all"
    assert likert.methods == tuple(spec.methods) and likert.scale["max"] == 5
    assert spec.subsets == ("1", "2", "3")  # the most methods of a latin-square section


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s["sections"].append({"type": "likert_wrod", "targets": ["n07920052"]}), "sections[5].type"),
        (lambda s: s["sections"][1].update(methods=["VITAL"]), "sections[1].methods[0]"),
        (lambda s: s["sections"][1].update(methods=["pii"]), "sections[1].methods[0]: 'pii' is not in the study's methods"),
        (lambda s: s["sections"][0].update(targets=["n99999999"]), "sections[0].targets[0]: 'n99999999' is not in the study's targets"),
        (lambda s: s["sections"][1].update(colour="red"), "sections[1]"),
        (lambda s: s.pop("model"), "(top level): 'model' is a required property"),
        (lambda s: s.update(seeds=[]), "seeds"),
        (lambda s: s.update(study_id="other"), "study_id: 'other' differs from the directory name"),
        (lambda s: s["exclusions"].update(completion_seconds={"min": 10, "max": 5}), "exclusions.completion_seconds"),
        (lambda s: s["exclusions"]["straightlining"].update(sections=["nope"]), "exclusions.straightlining.sections[0]"),
        (lambda s: s["sections"][1].update(targets=["layer4.2_c1935"]), "sections[1].targets: likert_word needs class targets"),
        (lambda s: s["sections"].append({"type": "likert_word", "targets": ["n07920052"]}), "sections[5].id"),
    ],
)
def test_errors_name_file_and_field(tmp_path, change, field):
    raw = full_spec()
    change(raw)
    path = write_spec(tmp_path, raw)
    with pytest.raises(StudySpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert str(path) in message and field in message, message


def test_unreadable_spec(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("sections: [unclosed")
    with pytest.raises(StudySpecError, match="not valid YAML"):
        load_spec(path)
    with pytest.raises(StudySpecError, match="no such study spec"):
        load_spec(tmp_path / "absent" / "study.yaml")
