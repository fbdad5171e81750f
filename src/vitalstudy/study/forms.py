"""Stage 4: turn a study spec and a run's images into a blinded, counterbalanced form bundle.

Writes (contracts.md, stage 4) ``04_study/<study>/forms/`` — manifest, codebook, stimuli, one HTML
form per subset, a Google Apps Script — and ``04_study/<study>/private/answer_key.json``. Every
choice a participant could exploit (question order, question ids, which method a question and
subset show, stimulus positions, 2AFC sides, catch placement, queries) is drawn from a generator
keyed by the study's secret blinding key (``private/blinding.key``) and the spec's seed: the public
spec and code predict none of it, and the same spec, images and key give the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from string import ascii_lowercase

from vitalstudy.errors import VitalStudyError
from vitalstudy.layout import RunLayout
from vitalstudy.study.assignment import static_salt
from vitalstudy.study.forms_gas import apps_script, item_title
from vitalstudy.study.forms_html import render_pages
from vitalstudy.study.forms_queries import (
    ScorerFactory,
    query_candidates,
    rank_images,
    read_index,
    sample_candidates,
)
from vitalstudy.study.forms_stimuli import Source, StimulusBank, blinding_key
from vitalstudy.study.spec import Section, StudySpec, load_spec

FIXED_COLUMNS = ("participant_id", "subset", "started_at", "submitted_at")
CONFIDENCE = {"min": 1, "max": 3, "labels": {"1": "not confident", "3": "very confident"}}


def fv_path(run_dir: Path, model: str, method: str, target: str, seed: int) -> Path:
    return RunLayout(run_dir).fv.png(model, method, target, seed)


def references_path(run_dir: Path, model: str, target: str) -> Path:
    return RunLayout(run_dir).references.json(model, target)


def section_order(spec: StudySpec) -> list[Section]:
    """The sections in the spec's order: participants of the HTML forms see them so. (The Google Form
    cannot follow it everywhere; ``forms_gas`` says where and why.)"""
    return list(spec.sections)


def section_fvs(spec: StudySpec, section: Section, target: str) -> list[tuple[str, str, str, int]]:
    """(model, method, target, seed) of every FV of `target` that the section shows."""
    seeds = spec.seeds if section.type == "two_afc" else (section.fv_seed,)
    return [(spec.model, method, target, seed) for method in section.methods for seed in seeds]


def required_inputs(spec: StudySpec, run_dir: Path) -> list[tuple[Section, Path]]:
    """Every run file the spec reads, with the section that needs it."""
    needed = []
    for section in spec.sections:
        if section.type == "demographics":
            continue
        for target in section.targets:
            needed += [(section, fv_path(run_dir, *fv)) for fv in section_fvs(spec, section, target)]
            if section.type in ("likert_references", "two_afc"):
                needed.append((section, references_path(run_dir, spec.model, target)))
        if section.type == "two_afc":
            needed.append((section, RunLayout(run_dir).index.images))
    return needed


def study_inputs(spec_path: str | Path, run_dir: str | Path) -> list[str]:
    """The run files a study's forms depend on, for the workflow's DAG."""
    return sorted({str(p) for _, p in required_inputs(load_spec(spec_path), Path(run_dir))})


def study_fvs(spec_path: str | Path) -> list[tuple[str, str, str, int]]:
    """(model, method, target, seed) of every FV the study shows: the workflow maps them to the
    generation jobs that write them."""
    spec = load_spec(spec_path)
    return sorted({fv for s in spec.sections if s.type != "demographics" for t in s.targets
                   for fv in section_fvs(spec, s, t)})


class KeyedDraws:
    """Random generators and ids derived from the secret key (HMAC-SHA256 of a label), so that
    anyone without the key sees draws independent of the spec; the spec's seed is mixed in so that
    changing it still re-draws."""

    def __init__(self, key: bytes, seed: int):
        self.key, self.seed = key, seed

    def digest(self, *label) -> bytes:
        message = json.dumps([self.seed, *label], default=str).encode()
        return hmac.new(self.key, message, hashlib.sha256).digest()

    def rng(self, *label) -> random.Random:
        return random.Random(int.from_bytes(self.digest(*label), "big"))

    def token(self, *label) -> str:
        return self.digest(*label).hex()[:10]


@dataclass
class Slot:
    """One answerable item before it becomes a manifest question."""

    number: int
    target: str
    method: str | None
    subset: str | None
    position: str | None
    catch: bool

    def question_id(self, section_id: str, draws: KeyedDraws) -> str:
        """`<section>.<keyed token>`: unique, stable for a key, and carrying no order or assignment."""
        return f"{section_id}." + draws.token("question", section_id, self.number, self.position, self.subset)


def latin_rows(section: Section, subsets: tuple[str, ...], rng: random.Random) -> dict[tuple[int, str], str]:
    """(target index, subset) -> method of a keyed Latin square: question row r(i) and subset column
    c(s) show ``order[(r(i) + c(s)) mod M]``, with the rows, columns and method order all permuted by
    the keyed generator. Each subset still sees every method equally often and each target a
    different method in every subset (of M consecutive rows)."""
    methods = list(section.methods)
    rng.shuffle(methods)
    rows = list(range(len(section.targets)))
    rng.shuffle(rows)
    columns = list(range(len(subsets)))
    rng.shuffle(columns)
    return {(i, subset): methods[(rows[i] + columns[s]) % len(methods)]
            for i in range(len(section.targets)) for s, subset in enumerate(subsets)}


def slots(section: Section, subsets: tuple[str, ...], rng: random.Random) -> list[Slot]:
    """Counterbalanced items of one section, every draw from the keyed generator ``rng``.

    ``all``: each question shows every method, at shuffled positions a, b, ...; ``latin_square``:
    see ``latin_rows``. Catch trials are shuffled in with the rest; question numbers follow
    presentation order.
    """
    square = latin_rows(section, subsets, rng) if section.latin else {}
    items = [(i, t, False) for i, t in enumerate(section.targets)]
    items += [(c, section.targets[c % len(section.targets)], True) for c in range(section.catch_trials)]
    if section.shuffle:
        rng.shuffle(items)
    out = []
    for number, (i, target, catch) in enumerate(items, 1):
        if section.latin:
            for subset in subsets:
                method = None if catch else square[i, subset]
                out.append(Slot(number, target, method, subset, None, catch))
        elif catch:
            out.append(Slot(number, target, None, None, None, True))
        else:
            methods = list(section.methods)
            rng.shuffle(methods)
            out += [Slot(number, target, m, None, p, False) for p, m in zip(ascii_lowercase, methods)]
    return out


def fields_for(section: Section) -> list[dict]:
    """The answer fields of a question of this section (one export column each)."""
    likert = {"field": "value", "kind": "likert", **section.scale}
    return {
        "likert_word": [likert],
        "likert_references": [likert],
        "free_label": [{"field": "value", "kind": "text", "max_length": section.max_length}],
        "two_afc": [
            {"field": "choice", "kind": "choice", "options": ["A", "B"]},
            {"field": "confidence", "kind": "likert", **CONFIDENCE},
        ],
    }[section.type]


def question(section: Section, question_id: str, number: int, *, prompt: str, fields: list[dict],
             subset: str | None = None, word: str | None = None, stimuli: list[dict] = (),
             catch: bool = False, required: bool = True, position: str | None = None) -> dict:
    """A manifest question (contracts.md, manifest.json)."""
    return {
        "question_id": question_id, "section_id": section.section_id, "type": section.type,
        "number": number, "position": position, "subset": subset, "prompt": prompt, "word": word,
        "fields": fields,
        "stimuli": list(stimuli), "catch": catch, "required": required,
    }


@dataclass
class Builder:
    """Accumulates manifest questions, answer-key entries and stimuli for one study."""

    spec: StudySpec
    run_dir: Path
    bank: StimulusBank
    scorer: ScorerFactory | None
    draws: KeyedDraws
    questions: list[dict] = field(default_factory=list)
    key: dict[str, dict] = field(default_factory=dict)
    _targets: dict[str, dict] = field(default_factory=dict)
    _rankings: dict[str, dict[str, list[dict]]] = field(default_factory=dict)  # section -> target -> rows
    _references: dict[str, list[dict]] = field(default_factory=dict)  # target -> stage-1 reference rows
    _queries: dict[tuple[str, str], dict] = field(default_factory=dict)  # (section, target) -> queries

    def reference_rows(self, target: str) -> list[dict]:
        """The target's stage-1 references, read once (every slot of the target shows them)."""
        if target not in self._references:
            path = references_path(self.run_dir, self.spec.model, target)
            self._references[target] = json.loads(path.read_text())["references"]
        return self._references[target]

    def target_meta(self, target: str) -> dict:
        """The stage-1 target object, read from an FV sidecar or the references file."""
        if target not in self._targets:
            candidates = [references_path(self.run_dir, self.spec.model, target)]
            candidates += [
                fv_path(self.run_dir, self.spec.model, m, target, s).with_suffix(".json")
                for m in self.spec.methods
                for s in self.spec.seeds
            ]
            meta = {}
            for path in candidates:
                if path.exists():
                    meta = json.loads(path.read_text()).get("target") or {}
                    break
            self._targets[target] = meta
        return self._targets[target]

    def label(self, target: str, needed_by: Section | None = None) -> str | None:
        label = self.spec.labels.get(target) or self.target_meta(target).get("label")
        if label is None and needed_by is not None:
            raise VitalStudyError(
                f"{self.spec.where(needed_by)}: target {target} has no label; add `label` to it "
                f"under `targets` (the run's sidecars name none)"
            )
        return label

    def fv(self, method: str, target: str, seed: int) -> dict:
        path = fv_path(self.run_dir, self.spec.model, method, target, seed)
        info = {"method": method, "target": target, "seed": seed}
        name = path.relative_to(self.run_dir).as_posix()
        return {**self.bank.add(Source(path, False, name, info=info)), "role": "fv"}

    def natural(self, row: dict, role: str, crop_box=None, flip=False) -> dict:
        info = {"method": None, "target": None, "seed": None, "image_id": row["image_id"]}
        box = tuple(crop_box) if crop_box else None
        source = Source(Path(row["path"]), True, f"image:{row['image_id']}", box, flip, info)
        return {**self.bank.add(source), "role": role}

    def references(self, target: str, count: int) -> list[dict]:
        out = []
        for ref in self.reference_rows(target)[:count]:
            view = ref.get("view") or {}
            out.append(self.natural(ref, "reference", view.get("crop_box"), bool(view.get("flip"))))
        return out

    def queries(self, section: Section, target: str) -> dict:
        """High / low query rows and the top-ranked rows, once per (section, target)."""
        if (section.section_id, target) not in self._queries:
            self._queries[section.section_id, target] = self._pick_queries(section, target)
        return self._queries[section.section_id, target]

    def _pick_queries(self, section: Section, target: str) -> dict:
        if section.section_id not in self._rankings:
            if self.scorer is None:
                raise VitalStudyError(f"{self.spec.where(section)}: 2AFC queries need a model to rank images")
            seed = self.draws.token("candidates", section.section_id)
            rows = sample_candidates(read_index(self.run_dir), section.candidates, seed)
            metas = {t: self.target_meta(t) for t in section.targets}
            self._rankings[section.section_id] = rank_images(rows, self.scorer(metas))
        used = {r["image_id"] for r in self.reference_rows(target)}
        ranked = query_candidates(self._rankings[section.section_id][target], used)
        pool = section.query_pool
        needed = 2 * pool + (section.references if section.catch_trials else 0)
        if len(ranked) < needed:
            raise VitalStudyError(
                f"{self.spec.where(section)}: target {target} needs {needed} natural images in "
                f"{self.run_dir / '00_index' / 'images.csv'} that may serve as queries, found {len(ranked)}; "
                f"lower query_pool / references, raise candidates or index more images"
            )
        rng = self.draws.rng("queries", section.section_id, target)
        return {"high": rng.choice(ranked[:pool]), "low": rng.choice(ranked[-pool:]), "top": ranked[: section.references]}

    def two_afc(self, section: Section, slot: Slot, high_first: bool) -> tuple[list[dict], dict]:
        q = self.queries(section, slot.target)
        if slot.catch:
            # Catch trial: the "visualizations" are top-activating photos and one query is among them;
            # the pick depends on the question only, so every subset gets the same trial.
            high = self.draws.rng("catch", section.section_id, slot.number).choice(q["top"])
            visuals = [self.natural(r, "reference") for r in q["top"]]
        else:
            high = q["high"]
            visuals = [self.fv(slot.method, slot.target, s) for s in self.spec.seeds]
        a, b = (high, q["low"]) if high_first else (q["low"], high)
        stimuli = visuals + [self.natural(a, "query_a"), self.natural(b, "query_b")]
        key = {"correct_choice": "A" if high_first else "B", "query_a": a["image_id"], "query_b": b["image_id"]}
        return stimuli, key

    def add_section(self, section: Section) -> None:
        rng = self.draws.rng("section", section.section_id)
        if section.type == "demographics":
            for number, q in enumerate(section.questions, 1):
                field_ = {"field": "value", "kind": "choice", "options": q["options"], "required": False}
                self.questions.append(question(
                    section, f"demographics.{q['id']}", number, prompt=q["prompt"], fields=[field_], required=False
                ))
            return
        # 2AFC: the more activating query is "A" in half of the questions (an odd one out by a keyed
        # coin), in keyed order, so no side is a better guess than the other.
        sides = [n % 2 == 0 for n in range(len(section.targets) + section.catch_trials)]
        if len(sides) % 2:
            sides[-1] = rng.random() < 0.5
        rng.shuffle(sides)
        for slot in slots(section, self.spec.subsets, rng):
            qid = slot.question_id(section.section_id, self.draws)
            if qid in self.key:
                raise VitalStudyError(f"{self.spec.where(section)}: question id {qid} drawn twice; change `seed`")
            label = self.label(slot.target, section if section.type in ("likert_word", "free_label") else None)
            key = {
                "target": slot.target, "target_label": label, "model": self.spec.model,
                "method": slot.method, "seed": None if slot.catch else section.fv_seed,
                "ground_truth_label": label if section.type == "free_label" else None,
                "correct_choice": None,
            }
            if section.type == "two_afc":
                stimuli, extra = self.two_afc(section, slot, sides[slot.number - 1])
                key.update(extra, seed=None, seeds=None if slot.catch else list(self.spec.seeds))
            elif section.type == "likert_references":
                stimuli = self.references(slot.target, section.references) + [
                    self.fv(slot.method, slot.target, section.fv_seed)
                ]
            else:
                stimuli = [self.fv(slot.method, slot.target, section.fv_seed)]
            word = label if section.type == "likert_word" else None
            prompt = section.prompt.replace("{word}", word or "")
            self.questions.append(question(
                section, qid, slot.number, subset=slot.subset, prompt=prompt, word=word,
                fields=fields_for(section), stimuli=stimuli, catch=slot.catch, position=slot.position,
            ))
            self.key[qid] = {**key, "catch": slot.catch}

def manifest_version(spec: StudySpec, bank: StimulusBank, questions: list[dict]) -> str:
    """Hash of the spec, the stimuli and the questions' keyed ids and stimuli: another blinding key
    draws another assignment, which is another version (responses to one never match the other)."""
    hashes = sorted(hashlib.sha256(data).hexdigest() for data in bank.files.values())
    public = {k: v for k, v in spec.raw.items() if k != "completion"}  # the code must not be guessable from it
    layout = [[q["question_id"], [s["stimulus_id"] for s in q["stimuli"]]] for q in questions]
    blob = json.dumps({"spec": public, "stimuli": hashes, "questions": layout}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def codebook_rows(manifest: dict) -> list[dict]:
    """Export column header -> question id, fixed columns first (contracts.md, codebook.csv)."""
    rows = [
        {"column_header": c, "question_id": "", "field": c, "section_id": "", "type": "", "subset": ""}
        for c in FIXED_COLUMNS
    ]
    for q in manifest["questions"]:
        for f in q["fields"]:
            rows.append({
                "column_header": item_title(q, f["field"]), "question_id": q["question_id"],
                "field": f["field"], "section_id": q["section_id"], "type": q["type"],
                "subset": q["subset"] or "",
            })
    return rows


def to_csv(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def build_manifest(spec: StudySpec, run_dir: Path, private_dir: Path, scorer: ScorerFactory | None):
    """Plan the whole study in memory: (manifest, answer key, stimulus bank)."""
    missing = [f"section '{s.section_id}': {p}" for s, p in required_inputs(spec, run_dir) if not p.exists()]
    if missing:
        raise VitalStudyError(
            f"{spec.path}: the run {run_dir} lacks files this study needs "
            f"(generate them or drop them from the spec):\n" + "\n".join(missing)
        )
    key = blinding_key(private_dir)
    builder = Builder(spec, run_dir, StimulusBank(key, run_dir), scorer, KeyedDraws(key, spec.seed))
    sections = section_order(spec)
    for section in sections:
        builder.add_section(section)
    builder.bank.encode_all()
    for q in builder.questions:
        for stimulus in q["stimuli"]:
            stimulus["sha256"] = builder.bank.sha256(stimulus["stimulus_id"])
    version = manifest_version(spec, builder.bank, builder.questions)
    manifest = {
        "format": "vitalstudy.manifest/1", "study_id": spec.study_id, "manifest_version": version,
        "title": spec.title, "welcome": spec.welcome, "instructions": spec.instructions, "consent": spec.consent,
        "subsets": list(spec.subsets), "window": spec.window, "exclusions": spec.exclusions,
        "sections": [
            {"section_id": s.section_id, "type": s.type, "title": s.title, "instructions": s.instructions}
            for s in sections
        ],
        "questions": builder.questions,
    }
    answer_key = {
        "format": "vitalstudy.answer_key/1", "study_id": spec.study_id, "manifest_version": version,
        "questions": builder.key, "stimuli": builder.bank.key_entries,
    }
    return manifest, answer_key, builder.bank


def write_forms(spec: StudySpec, run_dir: Path, study_dir: Path, scorer: ScorerFactory | None = None) -> dict:
    """Build and write the bundle; the old ``forms/`` is replaced only once the new one is complete."""
    private_dir = study_dir / "private"
    manifest, answer_key, bank = build_manifest(spec, run_dir, private_dir, scorer)
    staging = study_dir / ".forms.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "stimuli").mkdir(parents=True)
    for stimulus_id, data in bank.files.items():
        (staging / "stimuli" / f"{stimulus_id}.png").write_bytes(data)
    pages = render_pages(manifest, forbidden=spec.methods, assignment_salt=static_salt(private_dir))
    texts = {
        "manifest.json": json.dumps(manifest, indent=2) + "\n",
        "codebook.csv": to_csv(codebook_rows(manifest),
                               ["column_header", "question_id", "field", "section_id", "type", "subset"]),
        "google_form.gs": apps_script(manifest),
        **pages,
    }
    for name, text in texts.items():
        (staging / name).write_text(text)
    private_dir.mkdir(parents=True, exist_ok=True)
    key_tmp = private_dir / "answer_key.json.partial"
    key_tmp.write_text(json.dumps(answer_key, indent=2) + "\n")
    forms_dir = study_dir / "forms"
    shutil.rmtree(forms_dir, ignore_errors=True)
    staging.rename(forms_dir)
    key_tmp.rename(private_dir / "answer_key.json")
    completion = private_dir / "completion.json"
    if spec.completion:
        completion.write_text(json.dumps(spec.completion, indent=2) + "\n")
    else:
        completion.unlink(missing_ok=True)
    return manifest
