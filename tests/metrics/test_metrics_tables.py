"""Paper-shaped tables: our cells beside the paper's numbers with the paper row cited, and honest
markers for unavailable, not applicable and not-run cells."""

import math

import pandas as pd
import pytest

from metrics_helpers import MODEL
from vitalstudy.fv.registry import METHODS
from vitalstudy.metrics import tables
from vitalstudy.metrics.longformat import row, unavailable


@pytest.fixture
def paper():
    return tables.paper_numbers()


def test_paper_numbers_cite_table_and_row(paper):
    assert set(paper["table"]) == {1, 2, 3, 5}
    assert paper["source"].str.match(r"^Table [1235], row '.+'$").all()
    key = ["table", "model", "method", "setup", "metric"]
    assert not paper.duplicated(key).any()

    def value(table, model, method, metric, setup=None):
        sel = paper[(paper["table"] == table) & (paper["model"] == model) & (paper["method"] == method)
                    & (paper["metric"] == metric)]
        if setup is not None:
            sel = sel[sel["setup"] == setup]
        return float(sel["value"].iloc[0])

    # spot checks against the paper text (PAPER_NOTES §3)
    assert value(1, "resnet50", "vital", "fid_arch") == 58.79
    assert value(1, "resnet50", "real", "clip_top5") == 92.23
    assert value(2, "convnext_base", "maco", "fid", "r: 224") == 369.64
    assert value(2, "convnext_base", "maco", "fid_arch", "r: 224") == value(1, "convnext_base", "maco", "fid_arch")
    assert value(3, "resnet50", "maco", "mad") == -0.9678
    assert value(5, "resnet50", "vital", "clip_top1", "rand10") == 62.37


def _rows():
    rows = [row("accuracy_top1", MODEL, "vital", 95.0, n=6, ci=(90.0, 100.0)),
            row("accuracy_top1", MODEL, "maco", 40.0, n=6),
            row("fid_arch", MODEL, "vital", 12.345, n=6),
            row("auc", MODEL, "vital_lrp", 0.61234, n=3)]
    return pd.DataFrame(rows + unavailable(["clip_top1"], MODEL, ["vital"], "no CLIP weights here"))


def test_table1_puts_paper_values_beside_ours(paper, metrics_config):
    config = metrics_config | {"generate": {"methods": ["vital", "maco", "deepinversion"], "seeds": [0],
                                            "target_kinds": {}}}
    frame = tables.build_table(tables.table_specs(MODEL)[0], _rows(), paper, config)
    vital = frame[frame["method"] == "VITAL"].iloc[0]
    assert vital["model"] == f"{MODEL} (paper: resnet50)"
    assert vital["Acc. top-1 % (ours)"] == "95.00 [90.00, 100.00]"
    assert vital["Acc. top-1 % (paper, resnet50)"] == "99.90"
    assert vital["FID, own features (ours)"] == "12.35"
    assert vital["CLIP top-1 % (ours)"] == "unavailable" and "no CLIP weights here" in vital["notes"]
    assert vital["paper row"] == "Table 1, row 'ResNet50 / VITAL'"
    assert frame[frame["method"] == "MACO"].iloc[0]["CLIP top-1 % (ours)"] == "—"
    real = frame[frame["method"] == "natural images"].iloc[0]
    assert real["CLIP top-5 % (paper, resnet50)"] == "92.23" and real["Acc. top-1 % (paper, resnet50)"] == "—"


def test_not_applicable_and_not_run_cells(paper, metrics_config):
    config = metrics_config | {"models": {"targets": ["vit_l_16"], "held_out": None}}
    config["generate"] = {"methods": ["vital", "deepinversion"], "seeds": [0], "target_kinds": {}}
    frame = tables.build_table(tables.table_specs("resnet50")[1], pd.DataFrame(columns=_rows().columns), paper, config)
    deepinv = frame[frame["method"] == "DeepInversion"].iloc[0]
    assert deepinv["Acc. top-1 % (ours)"] == "n/a" and "BatchNorm" in deepinv["notes"]
    assert frame["model"].eq("vit_l_16").all()  # the paper evaluated ViT-L-16: its own rows
    pii = frame[frame["method"] == "PII"].iloc[0]
    assert pii["Acc. top-1 % (ours)"] == "not run" and pii["FID, own features (paper, vit_l_16)"] == "537.32"


def test_a_kind_the_config_narrows_away_has_no_row_unless_the_paper_has_one_and_the_caption_says_why(
        paper, metrics_config, tmp_path):
    config = metrics_config | {"generate": {"methods": ["vital", "vital_lrp", "fourier"], "seeds": [0],
                                            "target_kinds": {"vital_lrp": ["neuron"], "fourier": ["class"]}}}
    specs = {s.number: s for s in tables.table_specs(MODEL)}
    t1 = tables.build_table(specs[1], _rows(), paper, config).set_index("method")
    assert "VITAL (LRP relevance)" not in t1.index and "VITAL" in t1.index  # the paper's Table 1 has no LRP row
    text = tables.write_table(specs[1], t1.reset_index(), config, tmp_path)[1].read_text()
    assert "VITAL (LRP relevance) has no row: generate.target_kinds.vital_lrp is [neuron]." in text
    t3 = tables.build_table(specs[3], _rows(), paper, config).set_index("method")
    assert t3.loc["VITAL (LRP relevance)", "AUC (ours)"] == "0.6123"  # Table 3 is the kind it runs
    fourier = t3.loc[METHODS["fourier"].title]  # narrowed, but the paper reports it: the row stays
    assert fourier["AUC (ours)"] == "not run" and "generate.target_kinds.fourier is [class]" in fourier["notes"]
    assert fourier["AUC (paper, resnet50)"] != "—"
    assert "has no row" not in tables.caption(specs[3], config)


def test_table3_and_table5(paper, metrics_config):
    specs = {s.number: s for s in tables.table_specs(MODEL)}
    t3 = tables.build_table(specs[3], _rows(), paper, metrics_config)
    lrp = t3[t3["method"] == "VITAL (LRP relevance)"].iloc[0]
    assert lrp["AUC (ours)"] == "0.6123" and lrp["AUC (paper, resnet50)"] == "0.5556"
    config = metrics_config | {"references": metrics_config["references"] | {"class_count": 10}}
    t5 = tables.build_table(specs[5], _rows(), paper, config)
    assert list(t5["setup (paper)"]) == ["rand5", "rand10", "rand20", "rand50", "rand100"]
    assert list(t5["Acc. top-1 % (ours)"]) == ["not run", "95.00 [90.00, 100.00]", "not run", "not run", "not run"]


def test_markdown_and_latex_escape_cells(tmp_path, metrics_config):
    frame = pd.DataFrame({"a_b": ["x|y", "50% & $1 ↓2"], "c": ["—", "{z}"]})
    md = tables.to_markdown(frame)
    assert md.splitlines()[2] == r"| x\|y | — |"
    tex = tables.to_latex(frame, "cap_1")
    assert r"50\% \& \$1 $\downarrow$2 & \{z\} \\" in tex and r"a\_b & c \\" in tex and r"\caption{cap\_1}" in tex
    spec = tables.table_specs(MODEL)[0]
    paths = tables.write_table(spec, frame, metrics_config, tmp_path)
    assert [p.name for p in paths] == ["table1.csv", "table1.md", "table1.tex"]
    assert "Görgün, Schiele, Fischer (2025), Table 1" in paths[1].read_text()
    assert math.isclose(len(pd.read_csv(paths[0])), 2)
