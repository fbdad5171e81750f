"""The paper's Tables 1, 2, 3 and 5 rebuilt from our long-format rows, each of our cells beside the
paper's number for the same architecture, method and metric (`paper_numbers.csv`, which cites the
paper's table and row for every value).

A model the paper did not evaluate (the offline EfficientNet-Lite0) is compared with the paper's
`metrics.tables.paper_model` rows, and the table says so in every row. Cells: a number with its
bootstrap CI in brackets; `unavailable` (the reason in the row's notes) when an asset was missing;
`n/a` when the method cannot run on the model; `not run` for paper setups this run did not produce;
`—` where the paper has no value. A method that `generate.target_kinds` keeps off a table's kind
and that the paper has no row for there (VITAL-LRP in Table 1) gets no row: the caption names it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from vitalstudy.fv.registry import METHODS
from vitalstudy.fv.settings import method_kinds, runs_kind
from vitalstudy.io import atomic_path
from vitalstudy.metrics.longformat import UNAVAILABLE
from vitalstudy.models.registry import get_spec

NOT_METHODS = {"real": "natural images", "pii": "PII"}  # rows no method of ours made (PII: the paper's only)
DECIMALS = {"auc": 4, "mad": 4, "kid": 4, "kid_arch": 4}


@dataclass(frozen=True)
class Column:
    label: str
    metric: str
    paper: bool  # does the paper report this metric (a "(paper)" column beside ours)?
    paper_label: str = ""  # the paper's name for it, when ours differs (another feature model)


@dataclass(frozen=True)
class TableSpec:
    number: int
    title: str
    kind: str  # "class" or "neuron": which methods the rows list
    columns: tuple[Column, ...]
    with_real: bool  # a natural-images reference row (CLIP on correctly classified images)


def table_specs(feature_model: str) -> list[TableSpec]:
    acc = Column("Acc. top-1 %", "accuracy_top1", True)
    held = Column("Held-out acc. top-1 %", "held_out_accuracy_top1", False)
    fid_arch = Column("FID, own features", "fid_arch", True)
    clip = (Column("CLIP top-1 %", "clip_top1", True), Column("CLIP top-5 %", "clip_top5", True))
    return [
        TableSpec(1, "Class neurons: accuracy, FID, CLIP zero-shot", "class",
                  (acc, held, fid_arch, Column("KID, own features", "kid_arch", False), *clip), True),
        TableSpec(2, "Class neurons, extended: FID on the feature model and on the model's own features", "class",
                  (acc, Column(f"FID, {feature_model} features", "fid", True, "FID, resnet50 features"), fid_arch,
                   Column(f"KID, {feature_model} features", "kid", False),
                   Column("KID, own features", "kid_arch", False), *clip), True),
        TableSpec(3, "Inner neurons: AUC and MAD (CoSy)", "neuron",
                  (Column("AUC", "auc", True), Column("MAD", "mad", True)), False),
        TableSpec(5, "Number of reference images |X_ref| (VITAL, class neurons)", "class",
                  (acc, fid_arch, *clip), False),
    ]


def paper_numbers() -> pd.DataFrame:
    text = resources.files("vitalstudy.metrics").joinpath("paper_numbers.csv").open(encoding="utf-8")
    with text as fh:
        return pd.read_csv(fh, comment="#", dtype={"setup": str}, keep_default_na=False)


def _format(metric: str, value: float) -> str:
    return f"{value:.{DECIMALS.get(metric, 2)}f}"


def _ours(rows: pd.DataFrame, model: str, method: str, metric: str, notes: dict[str, list[str]]) -> str:
    """Our aggregate cell (target = all); an unavailable metric is added to `notes` under its reason."""
    hit = rows[(rows["model"] == model) & (rows["method"] == method) & (rows["metric"] == metric)
               & (rows["target"] == "all")]
    if hit.empty:
        return "—"
    r = hit.iloc[0]
    if str(r["note"]).startswith(UNAVAILABLE):
        notes.setdefault(r["note"], []).append(metric)
        return "unavailable"
    cell = _format(metric, r["value"])
    if not (math.isnan(r["ci_low"]) or math.isnan(r["ci_high"])):
        cell += f" [{_format(metric, r['ci_low'])}, {_format(metric, r['ci_high'])}]"
    return cell


def _paper_model(paper: pd.DataFrame, table: int, model: str, fallback: str) -> str:
    return model if ((paper["table"] == table) & (paper["model"] == model)).any() else fallback


def _paper_rows(paper: pd.DataFrame, table: int, model: str, method: str) -> list[tuple[str, pd.DataFrame]]:
    """The paper's (setup, values) rows for a method, in the paper's order (first = Table 1's setup)."""
    sel = paper[(paper["table"] == table) & (paper["model"] == model) & (paper["method"] == method)]
    return [(setup, sel[sel["setup"] == setup]) for setup in dict.fromkeys(sel["setup"])]


def _paper_cell(values: pd.DataFrame | None, metric: str) -> str:
    if values is None:
        return "—"
    hit = values[values["metric"] == metric]
    return _format(metric, float(hit["value"].iloc[0])) if len(hit) else "—"


def _line(spec: TableSpec, model: str, paper_model: str, method: str, setup: str, ours: dict[str, str],
          paper_values: pd.DataFrame | None, notes: dict[str, list[str]]) -> dict:
    title = METHODS[method].title if method in METHODS else NOT_METHODS.get(method, method)
    line = {"model": model, "method": title, "setup (paper)": setup}
    for col in spec.columns:
        line[f"{col.label} (ours)"] = ours.get(col.metric, "—")
        if col.paper:
            line[f"{col.paper_label or col.label} (paper, {paper_model})"] = _paper_cell(paper_values, col.metric)
    sources = sorted(set(paper_values["source"])) if paper_values is not None and len(paper_values) else []
    line["paper row"] = "; ".join(sources) or "—"
    line["notes"] = "; ".join(f"{', '.join(metrics)}: {reason}" if metrics else reason
                              for reason, metrics in notes.items())
    return line


def _methods(spec: TableSpec, config: dict, paper: pd.DataFrame, paper_model: str) -> list[str]:
    ours = list(config["generate"]["methods"])
    if spec.number == 5:
        return ["vital"]
    theirs = paper[(paper["table"] == spec.number) & (paper["model"] == paper_model)]["method"]
    real = ["real"] if spec.with_real else []
    return real + ours + [m for m in dict.fromkeys(theirs) if m not in ours and m != "real"]


def left_out(spec: TableSpec, config: dict, paper: pd.DataFrame) -> list[str]:
    """Methods the run has but keeps off this table's kind, where the paper has no row for them
    either: a row for them would be empty by the config's choice, so the caption names them."""
    in_paper = set(paper[paper["table"] == spec.number]["method"])
    return [m for m in config["generate"]["methods"]
            if not runs_kind(config["generate"], m, spec.kind) and m not in in_paper]


def build_table(spec: TableSpec, rows: pd.DataFrame, paper: pd.DataFrame, config: dict) -> pd.DataFrame:
    lines = []
    omitted = set(left_out(spec, config, paper))
    class_count = config["references"]["class_count"]
    for model in config["models"]["targets"]:
        paper_model = _paper_model(paper, spec.number, model, config["metrics"]["tables"]["paper_model"])
        model_label = model if paper_model == model else f"{model} (paper: {paper_model})"
        for method in [m for m in _methods(spec, config, paper, paper_model) if m not in omitted]:
            paper_setups = _paper_rows(paper, spec.number, paper_model, method) or [("", None)]
            reason = METHODS[method].not_applicable(get_spec(model), spec.kind) if method in METHODS else None
            configured = method in config["generate"]["methods"]
            narrowed = configured and not runs_kind(config["generate"], method, spec.kind)
            ran = (configured and not narrowed) or method == "real"
            for i, (setup, values) in enumerate(paper_setups):
                notes: dict[str, list[str]] = {}
                ours_here = ran and (i == 0 if spec.number != 5 else setup == f"rand{class_count}")
                if reason:
                    ours = {c.metric: "n/a" for c in spec.columns}
                    notes[f"n/a: {reason}"] = []
                elif ours_here:
                    ours = {c.metric: _ours(rows, model, method, c.metric, notes) for c in spec.columns}
                else:
                    ours = {c.metric: "not run" for c in spec.columns}
                    if narrowed and i == 0:
                        kinds = ", ".join(method_kinds(config["generate"], method))
                        notes[f"not run: generate.target_kinds.{method} is [{kinds}]"] = []
                lines.append(_line(spec, model_label, paper_model, method, setup, ours, values, notes))
    return pd.DataFrame(lines)


def to_markdown(frame: pd.DataFrame) -> str:
    def esc(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")
    header = "| " + " | ".join(esc(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(esc(v) for v in line) + " |" for line in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "--", "↓": r"$\downarrow$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def to_latex(frame: pd.DataFrame, caption: str) -> str:
    lines = [r"\begin{table}[t]", r"\centering", r"\scriptsize",
             r"\begin{tabular}{" + "l" * len(frame.columns) + "}", r"\toprule",
             " & ".join(tex_escape(c) for c in frame.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(tex_escape(v) for v in line) + r" \\" for line in frame.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\caption{" + tex_escape(caption) + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def caption(spec: TableSpec, config: dict) -> str:
    omitted = "".join(f" {METHODS[m].title} has no row: generate.target_kinds.{m} is "
                      f"[{', '.join(method_kinds(config['generate'], m))}]."
                      for m in left_out(spec, config, paper_numbers()))
    return (f"Table {spec.number}-shaped: {spec.title}. Ours: run '{config['run']}', seeds "
            f"{config['generate']['seeds']}, values with {config['metrics']['bootstrap']['confidence']:.0%} "
            f"bootstrap CIs in brackets.{omitted} Paper: Görgün, Schiele, Fischer (2025), Table {spec.number}, "
            f"cited per row.")


def write_table(spec: TableSpec, frame: pd.DataFrame, config: dict, out_dir: str | Path) -> list[Path]:
    """table<k>.csv, .md and .tex; returns the paths written."""
    out_dir = Path(out_dir)
    text = caption(spec, config)
    paths = []
    for suffix, render in (("csv", None), ("md", lambda f: f"**{text}**\n\n{to_markdown(f)}"),
                           ("tex", lambda f: to_latex(f, text))):
        path = out_dir / f"table{spec.number}.{suffix}"
        with atomic_path(path) as tmp:
            if render is None:
                frame.to_csv(tmp, index=False)
            else:
                tmp.write_text(render(frame), encoding="utf-8")
        paths.append(path)
    return paths
