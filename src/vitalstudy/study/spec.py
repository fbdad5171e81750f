"""Study specs (``study/<id>/study.yaml``): loading, schema validation, defaults, cross-checks.

The spec is the one place a study is designed, so every mistake in it must be reported with the
file and the field at fault (``study/demo/study.yaml: sections[2].methods[0]: ...``) before any
stimulus is touched. Defaults are filled in here, once, so the forms builder never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from vitalstudy.config import packaged_schema
from vitalstudy.errors import VitalStudyError
from vitalstudy.study.answers import parse_timestamp

DEFAULT_PROMPTS = {
    "likert_word": "How well does the image reflect the word '{word}'?",
    "likert_references": "How well does the image reflect the reference images?",
    "free_label": "Describe the image with a word or a short phrase.",
    "two_afc": "Which of the two images activates the unit shown by the visualizations more strongly?",
}
DEFAULT_TITLES = {
    "likert_word": "Images and words",
    "likert_references": "Images and reference photos",
    "free_label": "Describe the image",
    "two_afc": "Which photo fits?",
    "demographics": "About you (optional)",
}
DEFAULT_ASSIGNMENT = {
    "likert_word": "all",
    "likert_references": "all",
    "free_label": "latin_square",
    "two_afc": "latin_square",
}
DEFAULT_CONSENT = {
    "agree": "I have read the information above and agree to take part.",
    "declined": "You have chosen not to take part. Nothing has been stored. You can close this page now.",
}
DEFAULT_SCALE = {"min": 1, "max": 5, "labels": {"1": "worst", "5": "best"}}
DEFAULT_DEMOGRAPHICS = [
    {"id": "gender", "prompt": "Gender", "options": ["female", "male", "non-binary", "prefer not to say"]},
    {"id": "age", "prompt": "Age", "options": ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]},
]


def is_class_target(target_id: str) -> bool:
    """Class neurons are named by a class id (a WordNet id, or an id of the model's labels file,
    which never looks like another kind of target); everything else is an inner unit."""
    from vitalstudy.data.classes import class_id_problem

    return class_id_problem(target_id) is None


class StudySpecError(VitalStudyError):
    """A study spec that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Section:
    """One section of a study with every default resolved."""

    section_id: str
    type: str
    title: str
    instructions: str
    prompt: str = ""
    targets: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    assignment: str = "all"
    shuffle: bool = True
    fv_seed: int = 0
    scale: dict = field(default_factory=lambda: dict(DEFAULT_SCALE))
    references: int = 6
    max_length: int = 200
    catch_trials: int = 0
    query_pool: int = 3
    candidates: int = 1000
    questions: tuple[dict, ...] = ()  # demographics only

    @property
    def latin(self) -> bool:
        return self.assignment == "latin_square"


@dataclass(frozen=True)
class StudySpec:
    """A validated study spec; ``raw`` is the parsed YAML, hashed into the manifest version."""

    path: Path
    study_id: str
    title: str
    welcome: str
    instructions: str
    model: str
    methods: tuple[str, ...]
    labels: dict[str, str | None]
    seeds: tuple[int, ...]
    seed: int
    subsets: tuple[str, ...]
    window: dict | None
    exclusions: dict
    sections: tuple[Section, ...]
    raw: dict
    consent: dict | None = None  # {text, agree, declined} with defaults filled in
    completion: dict | None = None  # {code, url?}; private, never in the bundle

    def where(self, section: Section | None = None) -> str:
        """Prefix for error messages: the spec file and, when given, the section."""
        return f"{self.path}" + (f": section '{section.section_id}'" if section else "")


def _field_path(error: jsonschema.ValidationError) -> str:
    parts = ""
    for p in error.absolute_path:
        parts += f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p))
    return parts or "(top level)"


def _schema_errors(raw: Any, path: Path) -> None:
    validator = jsonschema.Draft202012Validator(
        packaged_schema("study.schema.yaml"), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"{path}: {_field_path(e)}: {e.message}" for e in errors[:10]]
        more = f"\n... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise StudySpecError("invalid study spec:\n" + "\n".join(lines) + more)


def _section(raw: dict, spec_methods: tuple[str, ...], fv_seed: int) -> Section:
    kind = raw["type"]
    base = {
        "section_id": raw.get("id", kind),
        "type": kind,
        "title": raw.get("title", DEFAULT_TITLES[kind]),
        "instructions": raw.get("instructions", ""),
    }
    if kind == "demographics":
        return Section(**base, questions=tuple(raw.get("questions", DEFAULT_DEMOGRAPHICS)))
    return Section(
        **base,
        prompt=raw.get("prompt", DEFAULT_PROMPTS[kind]),
        targets=tuple(raw["targets"]),
        methods=tuple(raw.get("methods", spec_methods)),
        assignment=raw.get("assignment", DEFAULT_ASSIGNMENT[kind]),
        shuffle=raw.get("shuffle", True),
        fv_seed=raw.get("fv_seed", fv_seed),
        scale={**DEFAULT_SCALE, **raw["scale"]} if "scale" in raw else dict(DEFAULT_SCALE),
        references=raw.get("references", 6),
        max_length=raw.get("max_length", 200),
        catch_trials=raw.get("catch_trials", 0),
        query_pool=raw.get("query_pool", 3),
        candidates=raw.get("candidates", 1000),
    )


def _cross_check(path: Path, spec: StudySpec) -> None:
    """What the schema cannot say: references between fields must resolve."""
    problems = []
    if path.parent.name != spec.study_id:
        problems.append(f"study_id: '{spec.study_id}' differs from the directory name '{path.parent.name}'")
    ids = [s.section_id for s in spec.sections]
    for i, sid in enumerate(ids):
        if ids.index(sid) != i:
            problems.append(f"sections[{i}].id: '{sid}' is used by an earlier section too; give it an id")
    for i, section in enumerate(spec.sections):
        for j, m in enumerate(section.methods):
            if m not in spec.methods:
                problems.append(f"sections[{i}].methods[{j}]: '{m}' is not in the study's methods")
        for j, t in enumerate(section.targets):
            if t not in spec.labels:
                problems.append(f"sections[{i}].targets[{j}]: '{t}' is not in the study's targets")
        if section.type != "demographics" and section.fv_seed not in spec.seeds:
            problems.append(f"sections[{i}].fv_seed: {section.fv_seed} is not in the study's seeds")
        if section.scale["min"] >= section.scale["max"]:
            problems.append(f"sections[{i}].scale: min must be below max")
        if section.type == "likert_word" and not all(map(is_class_target, section.targets)):
            problems.append(f"sections[{i}].targets: likert_word needs class targets (class ids, not '<layer>_c<channel>')")
    exclusions = spec.exclusions
    bounds = exclusions.get("completion_seconds")
    if bounds and bounds["min"] >= bounds["max"]:
        problems.append("exclusions.completion_seconds: min must be below max")
    straight = exclusions.get("straightlining")
    for j, sid in enumerate(straight["sections"] if straight else []):
        if sid not in ids:
            problems.append(f"exclusions.straightlining.sections[{j}]: no section '{sid}'")
    window = spec.window
    if window and parse_timestamp(window["start"]) >= parse_timestamp(window["end"]):
        problems.append("window: start must be before end")
    if problems:
        raise StudySpecError("invalid study spec:\n" + "\n".join(f"{path}: {p}" for p in problems))


def load_spec(path: str | Path) -> StudySpec:
    """Parse, schema-validate and cross-check a study spec; raise StudySpecError naming the field."""
    path = Path(path)
    if path.is_dir():
        path = path / "study.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StudySpecError(f"{path}: no such study spec") from None
    except yaml.YAMLError as exc:
        raise StudySpecError(f"{path}: not valid YAML: {exc}") from None
    _schema_errors(raw, path)
    methods = tuple(raw["methods"])
    labels = {
        (t if isinstance(t, str) else t["id"]): (None if isinstance(t, str) else t.get("label"))
        for t in raw["targets"]
    }
    seeds = tuple(raw["seeds"])
    sections = tuple(_section(s, methods, seeds[0]) for s in raw["sections"])
    n_subsets = raw.get("subsets") or max((len(s.methods) for s in sections if s.latin), default=0)
    exclusions = {"min_catch_accuracy": None, "completion_seconds": None, "straightlining": None}
    exclusions.update(raw.get("exclusions", {}))
    spec = StudySpec(
        path=path,
        study_id=raw["study_id"],
        title=raw["title"],
        welcome=raw["welcome"],
        instructions=raw["instructions"],
        model=raw["model"],
        methods=methods,
        labels=labels,
        seeds=seeds,
        seed=raw["seed"],
        subsets=tuple(str(i + 1) for i in range(n_subsets)),
        window=raw.get("window"),
        exclusions=exclusions,
        sections=sections,
        raw=raw,
        consent={**DEFAULT_CONSENT, **raw["consent"]} if raw.get("consent") else None,
        completion=raw.get("completion"),
    )
    _cross_check(path, spec)
    return spec
