"""`vitalstudy figures KIND` on contract-shaped fixture files: every output appears, the tables say
what the fixture was built to show, and each call leaves a provenance record of what it read."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from figures_fixtures import STAGE_CONFIG, build_study
from vitalstudy.cli import main
from vitalstudy.io import read_json


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return build_study(tmp_path_factory.mktemp("study"), participants=12)


def _study_args(study):
    return ["--stage-config", STAGE_CONFIG, "--manifest", str(study["manifest"]), "--answer-key",
            str(study["answer_key"]), "--responses", str(study["responses"])]


def _outputs(prefix, *suffixes):
    paths = [prefix.with_name(prefix.name + s) for s in suffixes]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths), [p for p in paths if not p.is_file()]
    return paths


def test_likert_figure_statistics_and_provenance(study, tmp_path):
    out = tmp_path / "likert_word"
    assert main(["figures", "likert", *_study_args(study), "--section", "likert_word", "--out", str(out)]) == 0
    _outputs(out, ".png", ".pdf", "_questions.png", "_questions.pdf")
    table = pd.read_csv(out.with_name("likert_word_stats.csv"))
    estimates = table[table["row"] == "estimate"].set_index("method")
    assert estimates["estimate"].idxmax() == "vital"
    assert (estimates["ci_low"] <= estimates["estimate"]).all() and (estimates["estimate"] <= estimates["ci_high"]).all()
    tests = table[table["row"] == "test"]
    assert set(tests["test"]) == {"friedman", "wilcoxon"}  # every participant rated every method
    record = read_json(tmp_path / "_provenance" / "likert_word.json")
    assert record["stage"] == "figures" and str(study["responses"]) in record["inputs"]
    assert str(out.with_name("likert_word.png")) in record["outputs"]


def test_likert_statistics_are_reproducible(study, tmp_path):
    for name in ("a", "b"):
        main(["figures", "likert", *_study_args(study), "--section", "likert_word", "--out", str(tmp_path / name)])
    assert (tmp_path / "a_stats.csv").read_bytes() == (tmp_path / "b_stats.csv").read_bytes()
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()


def test_similarity_violins_report_the_papers_quantiles(study, tmp_path):
    out = tmp_path / "free_label"
    assert main(["figures", "similarity", *_study_args(study), "--scores", str(study["scores"]), "--out", str(out)]) == 0
    _outputs(out, ".png", ".pdf", "_questions.png")
    table = pd.read_csv(out.with_name("free_label_stats.csv"))
    est = table[table["row"] == "estimate"].set_index("method")
    assert (est["q05"] <= est["median"]).all() and (est["median"] <= est["q95"]).all()
    assert est.loc["vital", "median"] > est.loc["fourier", "median"]
    assert set(table["encoder"]) == {"fixture-encoder"}


def test_two_afc_leaves_catch_trials_out(study, tmp_path):
    out = tmp_path / "two_afc"
    assert main(["figures", "two-afc", *_study_args(study), "--out", str(out)]) == 0
    table = pd.read_csv(out.with_name("two_afc_stats.csv"))
    accuracy = table[(table["row"] == "estimate") & (table["measure"] == "accuracy")]
    assert accuracy["n_answers"].sum() == 12 * 3  # three non-catch trials per participant
    assert set(accuracy["unit"]) == {"class", "inner neuron"}
    assert accuracy.set_index(["unit", "method"]).loc[("class", "vital"), "paper"] == 1.0


def test_paper_markers_only_for_the_papers_model(tmp_path):
    """A study on another model (the demo's EfficientNet-Lite0) gets no paper values or markers."""
    from vitalstudy.figures import studydata, two_afc

    other = build_study(tmp_path / "lite", participants=6, model="efficientnet_lite0")
    out = tmp_path / "two_afc"
    assert main(["figures", "two-afc", *_study_args(other), "--out", str(out)]) == 0
    assert pd.read_csv(out.with_name("two_afc_stats.csv"))["paper"].isna().all()
    files = studydata.StudyFiles(other["manifest"], other["answer_key"], other["responses"])
    table = two_afc.statistics(files.two_afc(), {"iterations": 50, "confidence": 0.95}, 0,
                               paper=two_afc.paper_comparable(files.models))
    fig = two_afc.plot(table, files.who(files.responses["participant"]))
    assert "paper" not in fig._suptitle.get_text()
    assert all("paper" not in t.get_label() for ax in fig.axes for t in ax.collections)
    assert two_afc.paper_comparable({"resnet50"}) and not two_afc.paper_comparable({"resnet50", "vgg16"})


@pytest.mark.parametrize("simulated, expected", [(None, "6 SIMULATED participants"),
                                                 (2, "6 participants, 2 of them simulated"),
                                                 (0, "6 participants")])
def test_titles_and_tables_say_when_participants_are_simulated(tmp_path, simulated, expected):
    from vitalstudy.figures import likert, studydata

    paths = build_study(tmp_path / "s", participants=6, simulated=simulated)
    files = studydata.StudyFiles(paths["manifest"], paths["answer_key"], paths["responses"])
    frame = files.likert("likert_word")
    who = files.who(frame["participant"])
    assert who == expected
    assert expected in likert.plot_methods(frame, (1, 5), "Words", who).axes[0].get_title()
    for kind, extra in (("likert", ["--section", "likert_word"]), ("similarity", ["--scores", str(paths["scores"])]),
                        ("two-afc", []), ("demographics", [])):
        out = tmp_path / kind
        assert main(["figures", kind, *_study_args(paths), *extra, "--out", str(out)]) == 0
        table = pd.read_csv(out.with_name(f"{kind}_stats.csv"))
        assert set(table["participants_simulated"]) == {6 if simulated is None else simulated}, kind


def test_demographics_count_everyone(study, tmp_path):
    out = tmp_path / "demographics"
    assert main(["figures", "demographics", *_study_args(study), "--out", str(out)]) == 0
    table = pd.read_csv(out.with_name("demographics_stats.csv"))
    assert (table.groupby("question_id")["participants"].sum() == 12).all()
    assert "not answered" in set(table["option"])


def test_unknown_section_is_a_clear_error(study, tmp_path, capsys):
    assert main(["figures", "likert", *_study_args(study), "--section", "likert_references",
                 "--out", str(tmp_path / "x")]) == 1
    assert "likert_references" in capsys.readouterr().err


def _png(path, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), color).save(path)


def test_grid_circuits_and_tsne(tmp_path):
    fv = tmp_path / "02_fv"
    for method, color in (("vital", (200, 30, 30)), ("maco", (30, 30, 200))):
        for target in ("n07920052", "head_c12", "head_c345"):
            _png(fv / "m" / method / target / "seed0.png", color)
    common = ["--stage-config", STAGE_CONFIG, "--fv-root", str(fv), "--model", "m", "--seed", "0"]
    out = tmp_path / "figs"
    assert main(["figures", "grid", *common, "--methods", "vital", "maco", "fourier", "--targets", "n07920052",
                 "head_c12", "--out", str(out / "grid")]) == 0
    cells = pd.read_csv(out / "grid_data.csv")
    assert cells.set_index(["method", "target"])["present"].to_dict()[("fourier", "n07920052")] == False  # noqa: E712
    circuit = tmp_path / "n07920052.json"
    circuit.write_text(json.dumps({"class": {"wnid": "n07920052", "label": "espresso"}, "layer": "head",
                                   "channels": [{"channel": 12, "relevance": 0.4, "target": "head_c12"},
                                                {"channel": 345, "relevance": 0.9, "target": "head_c345"}]}))
    assert main(["figures", "circuits", *common, "--methods", "vital", "maco", "--circuits", str(circuit),
                 "--out", str(out / "circuits")]) == 0
    assert list(pd.read_csv(out / "circuits_data.csv")["target"][:2]) == ["head_c345", "head_c345"]  # by relevance
    rng = np.random.default_rng(0)
    points = pd.DataFrame({"kind": ["natural"] * 10 + ["fv"] * 2, "method": ["real"] * 10 + ["vital", "maco"],
                           "target": ["n07920052"] * 12, "label": ["espresso"] * 12, "seed": [""] * 10 + ["0", "0"],
                           "image": [f"i{i}" for i in range(12)], "x": rng.normal(size=12), "y": rng.normal(size=12)})
    points.to_csv(tmp_path / "tsne.csv", index=False)
    assert main(["figures", "tsne", "--stage-config", STAGE_CONFIG, "--coordinates", str(tmp_path / "tsne.csv"),
                 "--model", "m", "--out", str(out / "tsne")]) == 0
    agreement = pd.read_csv(out / "tsne_stats.csv").set_index("method")
    assert set(agreement.index) == {"vital", "maco"} and agreement["chance"].eq(1.0).all()
    for name in ("grid", "circuits", "tsne"):
        with Image.open(out / f"{name}.png") as image:
            assert image.size[0] > 200


@pytest.mark.parametrize("participants", [0, 30])
def test_report_captions_say_when_a_run_simulates_participants(participants):
    """The captions render as Snakemake renders them (Jinja, then reStructuredText); with simulated
    participants in the config every study figure's and table's caption says so."""
    from pathlib import Path
    from types import SimpleNamespace

    import jinja2
    from docutils.core import publish_parts

    report = Path(__file__).resolve().parents[2] / "workflow" / "report"
    snakemake = SimpleNamespace(wildcards={"study": "demo", "section": "likert_word"},
                                config={"study": {"simulate": {"participants": participants}}})
    for name in ("figure_likert", "figure_likert_questions", "figure_similarity", "figure_similarity_questions",
                 "figure_two_afc", "figure_demographics", "table_stats"):
        text = jinja2.Environment().from_string((report / f"{name}.rst").read_text()).render(snakemake=snakemake)
        html = publish_parts(text, writer="html", settings_overrides={"report_level": 2, "halt_level": 2})["body"]
        assert ("30 simulated participants" in html) == bool(participants), name


def test_grid_titles_a_class_by_the_label_its_generation_recorded(tmp_path):
    """A model with a labels file: the grid's column title is the sidecar's label (the file's display
    name), without the figures stage knowing the model."""
    from vitalstudy.figures.grids import target_title

    png = tmp_path / "vital" / "sea_bird" / "seed0.png"
    _png(png, (0, 0, 0))
    assert target_title("sea_bird", [png]) == "sea_bird"  # no sidecar: the id
    png.with_suffix(".json").write_text(json.dumps({"target": {"kind": "class", "id": "sea_bird", "label": "Sea bird"}}))
    assert target_title("sea_bird", [tmp_path / "absent.png", png]) == "Sea bird"
    assert target_title("n07920052", [tmp_path / "absent.png"]) == "espresso"
