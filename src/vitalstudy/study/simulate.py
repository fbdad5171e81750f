"""Simulated participants: a stated rater model that fills in a study and writes a Google Forms export.

Why: the demo has no humans, and a researcher planning a study needs to exercise the ingestion and
scoring path end to end and to estimate how many participants a comparison needs. Simulated exports
live under `results/` (never under `study/`, which holds real data) and ingestion marks every row
that comes from them (`simulated` column).

The rater model. A held-out classifier (not the model the FVs were made for) judges each stimulus
once (`judge_stimuli`): `p_true`, its probability of the stimulus's true class (for inner-neuron
targets, the overlap sum_k min(p_fv[k], p_refs[k]) of its class distributions for the FV and for
the neuron's reference images), and `top1_label` (+ alternative names). Participant i then answers:
- Likert on lo..hi: round(lo + (hi - lo) * p_true + b_i + e) clipped to the scale, with leniency
  b_i ~ N(0, LENIENCY_SD) per participant and e ~ N(0, NOISE_SD) per answer;
- free label: with probability 0.2 + 0.75 * p_true the held-out model's top-1 name (an alternative
  name with probability SYNONYM_P), otherwise a vague word; then one typo with probability TYPO_P;
- 2AFC: strength t = clip(p_true + N(0, 0.15), 0, 1); confidence lo + floor((hi - lo + 1) * t)
  (capped at hi); correct with probability 0.5 + 0.45 * t, so accuracy rises with confidence;
  catch trials are answered correctly with probability 0.98;
- demographics: uniform over the options, an optional one left blank with probability 0.2.
Roles, so that the exclusion rules are exercised: 10 % of participants (at least one when there are
five or more) are inattentive (ratings and choices uniformly random, catch trials included; free
text a vague word) and 5 % (at least one likewise) straight-line (the same value on every Likert
scale, the first option of every 2AFC item, otherwise attentive). Participants are assigned to the
subsets in turn and submit at uniform times within the first 30 days of the study window; a
Google Forms export has no start time, so the completion-time rule is not exercised.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from vitalstudy.errors import VitalStudyError
from vitalstudy.io import atomic_path
from vitalstudy.study.forms_gas import PARTICIPANT_ITEM, SUBSET_ITEM, item_title
from vitalstudy.study.answers import parse_timestamp

HELD_OUT_MODEL = "efficientnet_lite2"
LENIENCY_SD = 0.4
NOISE_SD = 0.7
SYNONYM_P = 0.3
TYPO_P = 0.15
VAGUE_ANSWERS = ("animal", "object", "no idea", "pattern", "food", "something round", "texture", "colours")
JUDGEMENT_COLUMNS = ["stimulus_id", "p_true", "top1_label", "alternatives", "model"]


@dataclass(frozen=True)
class Judgement:
    """The held-out model's view of one stimulus."""

    p_true: float
    top1_label: str
    alternatives: tuple[str, ...] = ()


# --------------------------------------------------------------------------- judging stimuli

def judge_stimuli(manifest: dict, answer_key: dict, forms_dir: Path, model_name: str = HELD_OUT_MODEL,
                  weights: str | None = None) -> dict[str, Judgement]:
    """Classify every FV stimulus of the study with the held-out model (CPU, eval mode)."""
    import torch
    from PIL import Image

    from vitalstudy.data.classes import classes_for
    from vitalstudy.models import get_spec, load_model

    spec, model = get_spec(model_name), load_model(model_name, weights=weights)
    classes = classes_for(spec)  # the judge's outputs: ImageNet-1k, or its labels file

    def probabilities(stimuli: list[dict]) -> torch.Tensor:
        """Class probabilities, in batches of 32 images."""
        batches = []
        for start in range(0, len(stimuli), 32):
            batch = stimuli[start:start + 32]
            images = [spec.preprocess(Image.open(forms_dir / s["file"]).convert("RGB")) for s in batch]
            with torch.no_grad():
                batches.append(torch.softmax(model(torch.stack(images)), dim=1))
        return torch.cat(batches)

    fvs = {s["stimulus_id"]: (s, q) for q in manifest["questions"] for s in q["stimuli"] if s["role"] == "fv"}
    if not fvs:
        return {}
    judgements, reference_means = {}, {}
    for sid, (_, question), probs in zip(fvs, fvs.values(), probabilities([s for s, _ in fvs.values()])):
        target = answer_key["questions"].get(question["question_id"], {}).get("target")
        if target in classes:
            p_true = float(probs[classes.index(target)])
        else:
            references = [s for s in question["stimuli"] if s["role"] == "reference"]
            if not references:
                raise VitalStudyError(f"manifest question {question['question_id']}: target {target!r} is no "
                                      f"class of {model_name} and the question has no reference images to compare with")
            key = tuple(s["stimulus_id"] for s in references)  # every method's question shows the same ones
            if key not in reference_means:
                reference_means[key] = probabilities(references).mean(0)
            p_true = float(torch.minimum(probs, reference_means[key]).sum())
        top = int(probs.argmax())
        name, alternative = classes.name(top), classes.alternatives[top]
        judgements[sid] = Judgement(p_true, name, (alternative,) if alternative != name else ())
    return judgements


def write_judgements(path: Path, judgements: dict[str, Judgement], model_name: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(JUDGEMENT_COLUMNS)
        for sid, j in sorted(judgements.items()):
            writer.writerow([sid, f"{j.p_true:.6f}", j.top1_label, "|".join(j.alternatives), model_name])


def read_judgements(path: Path) -> dict[str, Judgement]:
    with open(path, newline="", encoding="utf-8") as fh:
        try:
            return {r["stimulus_id"]: Judgement(float(r["p_true"]), r["top1_label"],
                                                tuple(a for a in r["alternatives"].split("|") if a))
                    for r in csv.DictReader(fh)}
        except (KeyError, ValueError) as exc:
            raise VitalStudyError(f"{path}: expected columns {JUDGEMENT_COLUMNS} with numeric p_true ({exc})") from None


# --------------------------------------------------------------------------- the rater

def assign_roles(n: int, rng: np.random.Generator) -> list[str]:
    """attentive / inattentive / straightliner per participant (shares in the module docstring)."""
    def count(share: float) -> int:
        return max(round(n * share), 1 if n >= 5 else 0)

    roles = ["attentive"] * n
    order = rng.permutation(n)
    n_inattentive, n_straight = count(0.10), count(0.05)
    for i in order[:n_inattentive]:
        roles[i] = "inattentive"
    for i in order[n_inattentive:n_inattentive + n_straight]:
        roles[i] = "straightliner"
    return roles


def add_typo(text: str, rng: np.random.Generator) -> str:
    """One keyboard slip: drop, double or swap a letter."""
    if len(text) < 3:
        return text
    i = int(rng.integers(1, len(text) - 1))
    kind = rng.integers(3)
    if kind == 0:
        return text[:i] + text[i + 1:]
    if kind == 1:
        return text[:i] + text[i] + text[i:]
    return text[:i - 1] + text[i] + text[i - 1] + text[i + 1:]


class Rater:
    """One simulated participant answering field by field."""

    def __init__(self, role: str, rng: np.random.Generator):
        self.role, self.rng = role, rng
        self.leniency = rng.normal(0.0, LENIENCY_SD)
        self.straight_values: dict[tuple[int, int], int] = {}  # one value per scale

    def likert(self, spec: dict, p: float) -> int:
        lo, hi = spec["min"], spec["max"]
        if self.role == "inattentive":
            return int(self.rng.integers(lo, hi + 1))
        if self.role == "straightliner":
            if (lo, hi) not in self.straight_values:
                self.straight_values[lo, hi] = int(self.rng.integers(lo, hi + 1))
            return self.straight_values[lo, hi]
        return int(np.clip(round(lo + (hi - lo) * p + self.leniency + self.rng.normal(0, NOISE_SD)), lo, hi))

    def free_label(self, judgement: Judgement) -> str:
        rng = self.rng
        if self.role != "inattentive" and rng.random() < 0.2 + 0.75 * judgement.p_true:
            synonym = judgement.alternatives and rng.random() < SYNONYM_P
            text = str(rng.choice(judgement.alternatives)) if synonym else judgement.top1_label
        else:
            text = str(rng.choice(VAGUE_ANSWERS))
        return add_typo(text, rng) if rng.random() < TYPO_P else text

    def two_afc(self, question: dict, correct: str, p: float) -> dict[str, object]:
        choice_spec, confidence_spec = question["fields"][0], question["fields"][1]
        options, lo, hi = choice_spec["options"], confidence_spec["min"], confidence_spec["max"]
        if self.role == "inattentive":
            return {choice_spec["field"]: str(self.rng.choice(options)),
                    confidence_spec["field"]: int(self.rng.integers(lo, hi + 1))}
        if self.role == "straightliner":
            return {choice_spec["field"]: options[0], confidence_spec["field"]: self.likert(confidence_spec, 1.0)}
        strength = float(np.clip(p + self.rng.normal(0, 0.15), 0, 1))
        p_correct = 0.98 if question.get("catch") else 0.5 + 0.45 * strength
        wrong = [o for o in options if o != correct]
        choice = correct if self.rng.random() < p_correct or not wrong else str(self.rng.choice(wrong))
        confidence = min(hi, lo + math.floor((hi - lo + 1) * strength))
        return {choice_spec["field"]: choice, confidence_spec["field"]: confidence}

    def choice(self, spec: dict) -> str:
        if not spec.get("required", True) and self.rng.random() < 0.2:
            return ""
        return str(self.rng.choice(spec["options"]))


def question_strength(question: dict, judgements: dict[str, Judgement]) -> Judgement | None:
    """The judgement of the question's FV stimulus (the mean p_true when it shows several)."""
    fvs = [judgements[s["stimulus_id"]] for s in question["stimuli"]
           if s["role"] == "fv" and s["stimulus_id"] in judgements]
    if not fvs:
        return None
    return Judgement(float(np.mean([j.p_true for j in fvs])), fvs[0].top1_label, fvs[0].alternatives)


def answer_question(rater: Rater, question: dict, judgement: Judgement | None, truth: dict) -> dict[str, object]:
    """field -> value for one question."""
    spec = question["fields"][0]
    if question["type"] == "demographics" or (spec["kind"] == "choice" and question["type"] != "two_afc"):
        return {spec["field"]: rater.choice(spec)}
    if judgement is None and not question.get("catch"):
        raise VitalStudyError(f"simulate: no judgement for the FV of question {question['question_id']}; "
                              "judge the study's stimuli first")
    p_true = judgement.p_true if judgement else 1.0  # a catch trial's answer does not depend on an FV
    if question["type"] == "two_afc":
        return rater.two_afc(question, str(truth.get("correct_choice")), p_true)
    if spec["kind"] == "text":
        return {spec["field"]: rater.free_label(judgement)}
    return {spec["field"]: rater.likert(spec, p_true)}


# --------------------------------------------------------------------------- the export

def google_forms_headers(manifest: dict) -> list[tuple[str, str, str]]:
    """(header, question id, field) in form order, titled as the forms stage titles the Google Form's items."""
    headers = [("Timestamp", "", "submitted_at"), (PARTICIPANT_ITEM, "", "participant_id")]
    if manifest.get("subsets"):
        headers.append((SUBSET_ITEM, "", "subset"))
    return headers + [(item_title(q, f["field"]), q["question_id"], f["field"])
                      for q in manifest["questions"] for f in q["fields"]]


def simulate_export(manifest: dict, answer_key: dict, judgements: dict[str, Judgement], participants: int,
                    seed: int, out: Path) -> list[str]:
    """Write a Google Forms CSV export of `participants` simulated people; returns their roles."""
    rng = np.random.default_rng(seed)
    roles = assign_roles(participants, rng)
    window = manifest.get("window")
    start = parse_timestamp(window["start"]) if window else datetime(2026, 1, 1, tzinfo=timezone.utc)
    end = min(parse_timestamp(window["end"]), start + timedelta(days=30)) if window else start + timedelta(days=30)
    subsets = manifest.get("subsets") or [None]
    headers = google_forms_headers(manifest)
    strengths = {q["question_id"]: question_strength(q, judgements) for q in manifest["questions"]}
    rows = []
    for i, role in enumerate(roles):
        rater, subset = Rater(role, rng), subsets[i % len(subsets)]
        submitted = start + (end - start) * rng.uniform(0.05, 0.95)
        values = {"submitted_at": submitted.strftime("%Y/%m/%d %I:%M:%S %p GMT+0"),
                  "participant_id": f"sim-{i + 1:04d}", "subset": subset or ""}
        for q in manifest["questions"]:
            if q.get("subset") in (None, subset):
                answers = answer_question(rater, q, strengths[q["question_id"]],
                                          answer_key["questions"].get(q["question_id"], {}))
                values.update({(q["question_id"], k): v for k, v in answers.items()})
        rows.append([values.get((qid, fld) if qid else fld, "") for _, qid, fld in headers])
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)  # CRLF line ends, as Google's download has
        writer.writerow([h for h, _, _ in headers])
        writer.writerows(rows)
    return roles


# --------------------------------------------------------------------------- power

def power_curve(effect: float, items: int, participants: list[int], alpha: float = 0.05, reps: int = 1000,
                seed: int = 0, scale: tuple[int, int] = (1, 5), base: float = 0.5) -> list[dict]:
    """Power to detect that method B is rated `effect` Likert points above method A.

    Design simulated: every participant rates `items` stimuli of each method (as in the paper's
    Likert sections: one FV per method and class). Ratings follow the rater model above, with method
    A's latent mean at `base` of the scale, B's `effect` points higher, and item difficulty varying
    with SD 0.15 of the scale. Test: paired t-test on the participants' mean ratings (two-sided at
    `alpha`). Power = share of `reps` simulated studies in which the test rejects."""
    from scipy import stats

    lo, hi = scale
    rng = np.random.default_rng(seed)
    curve = []
    for n in participants:
        leniency = rng.normal(0, LENIENCY_SD, (reps, n, 1))
        item = rng.normal(0, 0.15 * (hi - lo), (reps, 1, items))
        latent_a = lo + (hi - lo) * base + item + leniency

        def rate(latent):
            return np.clip(np.rint(latent + rng.normal(0, NOISE_SD, latent.shape)), lo, hi)

        diff = (rate(latent_a + effect) - rate(latent_a)).mean(axis=2)
        with warnings.catch_warnings():  # studies whose differences are all equal: p is 0 or nan, both handled
            warnings.simplefilter("ignore", RuntimeWarning)
            p = stats.ttest_1samp(diff, 0.0, axis=1).pvalue
        curve.append({"participants": n, "power": float(np.mean(np.nan_to_num(p, nan=1.0) < alpha))})
    return curve


def likert_items_per_method(manifest: dict, answer_key: dict) -> int:
    """How many Likert items each participant rates per method (the fewest over methods), as the
    power analysis needs it; a study with no rated method has nothing to compare."""
    first_subset = (manifest.get("subsets") or [None])[0]  # every subset sees as many items
    per_method: Counter = Counter()
    for q in manifest["questions"]:
        method = answer_key["questions"].get(q["question_id"], {}).get("method")
        if method and q["subset"] in (None, first_subset) and q["fields"][0]["kind"] == "likert":
            per_method[method] += 1
    if len(per_method) < 2:
        raise VitalStudyError("power analysis: the study has no Likert items of two methods to compare; "
                              "give --items")
    return min(per_method.values())


def participants_needed(curve: list[dict], target: float = 0.8) -> int | None:
    return next((row["participants"] for row in curve if row["power"] >= target), None)
