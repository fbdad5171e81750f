"""Self-contained static HTML forms, one per subset, plus an ``index.html`` entry page.

Built for phones first: one question per screen with a progress bar, images letterboxed into equal
square tiles (tap to enlarge), touch targets of at least 44 px, nothing wider than a 320 px screen.
Markup is rendered here from the manifest; the script and style sheet in ``static/`` are inlined so a
page needs nothing but its ``stimuli/`` folder, whether opened from disk or served. Every page is
checked for method names before it is written: a leak would unblind the study.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from itertools import groupby
from pathlib import Path

from vitalstudy.errors import VitalStudyError

STATIC = Path(__file__).parent / "static"
RESPONSE_FORMAT = "vitalstudy.response/1"


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def visible(manifest: dict, subset: str | None) -> list[dict]:
    return [q for q in manifest["questions"] if q["subset"] in (None, subset)]


def question_label(q: dict) -> str:
    """How a screen names one of its answers ("image b" when a question rates several); the
    progress bar, not a section's Q number, tells participants where they are."""
    if q["type"] == "demographics":
        return q["prompt"]
    return f"image {q['position']}" if q.get("position") else "this question"


def _img(stimulus: dict, alt: str, size: str) -> str:
    """An image letterboxed into a square tile (``size``: tile class); tap or click enlarges it."""
    return (
        f'<button type="button" class="zoom {size}" data-zoom aria-label="Enlarge {esc(alt)}">'
        f'<img src="{esc(stimulus["file"])}" alt="{esc(alt)}" loading="lazy"></button>'
    )


def _likert(name: str, field: dict, label: str) -> str:
    labels = field.get("labels", {})
    boxes = "".join(
        f'<label class="option"><input type="radio" name="{esc(name)}" value="{v}"><span>{v}</span></label>'
        for v in range(field["min"], field["max"] + 1)
    )
    low, high = labels.get(str(field["min"]), ""), labels.get(str(field["max"]), "")
    ends = f'<div class="ends"><span>{esc(low)}</span><span>{esc(high)}</span></div>' if low or high else ""
    return f'<div class="scale" role="radiogroup" aria-label="{esc(label)}">{ends}<div class="options">{boxes}</div></div>'


def _widget(q: dict) -> str:
    field = q["fields"][0]
    name = q["question_id"]
    if field["kind"] == "likert":
        return _likert(name, field, question_label(q))
    if field["kind"] == "text":
        return (f'<input type="text" name="{esc(name)}" maxlength="{field["max_length"]}" autocomplete="off" '
                f'autocapitalize="none" aria-label="{esc(question_label(q))}: your answer" placeholder="your answer">')
    options = "".join(f'<option value="{esc(o)}">{esc(o)}</option>' for o in field["options"])
    return f'<select name="{esc(name)}" aria-label="{esc(q["prompt"])}"><option value="">(no answer)</option>{options}</select>'


def _two_afc(q: dict) -> str:
    """Visualizations (at least as large as the photos), then photos A and B with their choice buttons."""
    visuals = "".join(_img(s, "visualization", "tile") for s in q["stimuli"] if s["role"] in ("fv", "reference"))
    queries = {s["role"]: s for s in q["stimuli"]}
    figures = "".join(
        f'<figure>{_img(queries[role], "photo " + side, "tile")}<label class="option choice">'
        f'<input type="radio" name="{esc(q["question_id"])}" value="{side}"><span>Photo {side}</span></label></figure>'
        for role, side in (("query_a", "A"), ("query_b", "B"))
    )
    confidence = q["fields"][1]
    return (
        f'<p class="caption">What the unit responds to:</p><div class="gallery">{visuals}</div>'
        f'<p class="caption">Which photo makes it respond more?</p><div class="gallery queries">{figures}</div>'
        f'<p class="caption">How confident are you?</p>'
        f'{_likert(q["question_id"] + ":confidence", confidence, "confidence")}'
    )


def _group(questions: list[dict]) -> str:
    """One numbered question: its prompt and references once, then each rated stimulus."""
    first = questions[0]
    refs = [s for s in first["stimuli"] if s["role"] == "reference"]
    head = f'<p class="prompt">{esc(first["prompt"])}</p>'
    if first["type"] == "two_afc":
        return f'<div class="question">{head}{_two_afc(first)}</div>'
    body = (f'<div class="gallery refs">{"".join(_img(s, "reference image", "tile small") for s in refs)}</div>'
            if refs else "")
    for q in questions:
        fvs = "".join(_img(s, "image to rate", "tile large") for s in q["stimuli"] if s["role"] == "fv")
        caption = f'<p class="caption">{esc(question_label(q)).capitalize()}</p>' if len(questions) > 1 else ""
        body += f'<div class="item">{caption}{fvs}<div class="answer">{_widget(q)}</div></div>'
    return f'<div class="question">{head}{body}</div>'


def _demographics(questions: list[dict]) -> str:
    fields = "".join(f'<label class="field"><span>{esc(q["prompt"])}</span>{_widget(q)}</label>' for q in questions)
    return f'<div class="question">{fields}</div>'


def _nav(back: bool, forward: str, action: str, extra: str = "") -> str:
    back_button = '<button type="button" class="secondary" data-action="back">Back</button>' if back else ""
    return f'<div class="nav">{back_button}{extra}<button type="button" data-action="{action}">{forward}</button></div>'


def _page(kind: str, body: str, nav: str, questions: Iterable[dict] = ()) -> str:
    ids = " ".join(q["question_id"] for q in questions)
    return f'<section class="page" data-kind="{kind}" data-questions="{esc(ids)}" hidden>{body}{nav}</section>'


def _progress(step: int, total: int) -> str:
    percent = round(100 * step / total)
    return (
        f'<div class="progress"><div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="{total}" '
        f'aria-valuenow="{step}" aria-label="progress"><span style="width:{percent}%"></span></div>'
        f"<p>Question {step} of {total}</p></div>"
    )


def _document(title: str, body: str, script: str = "", head: str = "", heading: bool = True) -> str:
    css = (STATIC / "form.css").read_text()
    h1 = f"<h1>{esc(title)}</h1>" if heading else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{css}</style>{head}</head>\n"
        f"<body><main>{h1}\n{body}\n</main>{script}</body></html>\n"
    )


def message_page(title: str, text_html: str) -> str:
    """A styled page for the server's short answers (not found, unknown submission)."""
    return _document(title, f'<div class="page"><h2>{esc(title)}</h2>{text_html}</div>', heading=False)


def completion_page(study_title: str, code: str, url: str | None, delay: int = 5) -> str:
    """After a stored submission: the completion code, large, and the way back to the platform
    (followed on its own after ``delay`` seconds when the spec gives a URL)."""
    back, head = "", ""
    if url:
        back = (f'<p>You will be taken back to the study platform in {delay} seconds.</p>'
                f'<p><a id="return" class="button" href="{esc(url)}">Return to the study platform now</a></p>')
        head = f'<meta http-equiv="refresh" content="{delay};url={esc(url)}">'
    body = (
        '<div class="page done"><h2>Thank you!</h2><p>Your answers were received.</p>'
        f'<p>Your completion code:</p><p class="code" id="code">{esc(code)}</p>{back}</div>'
    )
    return _document(study_title, body, head=head)


def embed_json(data, forbidden: Iterable[str]) -> str:
    """JSON for a <script> block in which no method name is spelled out.

    Data the page must send back (the study id, the format tag "vitalstudy...") can contain a
    method name; its first letter is written as a JSON \\u escape, which JSON.parse restores, so
    the page source never names a method.
    """
    text = json.dumps(data).replace("</", "<\\/")
    for word in forbidden:
        pattern = re.escape(word[0]) + f"(?={re.escape(word[1:])})"
        text = re.sub(pattern, lambda m: f"\\u{ord(m.group(0)):04x}", text, flags=re.IGNORECASE)
    return text


def _welcome(manifest: dict) -> str:
    return (
        f'<div class="intro">{esc(manifest["welcome"])}</div><h2>Instructions</h2>'
        f'<div class="intro">{esc(manifest["instructions"])}</div>'
        '<label class="field"><span>Participant ID</span><input type="text" id="participant_id" '
        'name="participant_id" maxlength="128" autocomplete="off" autocapitalize="none" spellcheck="false"></label>'
    )


def _consent(consent: dict) -> str:
    return (
        f'<h2>Consent</h2><div class="intro">{esc(consent["text"])}</div>'
        f'<label class="option tick"><input type="checkbox" id="consent_agree"><span>{esc(consent["agree"])}</span></label>'
    )


def screens(manifest: dict, subset: str | None) -> list[tuple[dict, list[dict]]]:
    """(section, questions) per screen of questions, in the manifest's order: one numbered question a
    screen, the whole demographics section on one."""
    questions = visible(manifest, subset)
    out = []
    for section in manifest["sections"]:
        own = [q for q in questions if q["section_id"] == section["section_id"]]
        if section["type"] == "demographics":
            out += [(section, own)] if own else []
        else:
            out += [(section, list(g)) for _, g in groupby(own, key=lambda q: q["number"])]
    return out


def render_form(manifest: dict, subset: str | None, forbidden: Iterable[str]) -> str:
    """The participant's form for one subset: welcome, consent (when the spec asks), one screen per
    question with a progress bar, submit."""
    questions = visible(manifest, subset)
    plan = screens(manifest, subset)
    consent = manifest.get("consent")
    pages = [_page("welcome", _welcome(manifest), _nav(False, "Start", "next" if plan or consent else "submit"))]
    if consent:
        decline = '<button type="button" class="secondary" data-action="decline">Decline</button>'
        pages.append(_page("consent", _consent(consent), _nav(False, "Continue", "next" if plan else "submit", decline)))
    seen = set()
    for step, (section, group) in enumerate(plan, 1):
        first = section["section_id"] not in seen
        seen.add(section["section_id"])
        intro = f'<h2>{esc(section["title"])}</h2>'
        if first and section["instructions"]:
            intro += f'<div class="intro">{esc(section["instructions"])}</div>'
        body = _progress(step, len(plan)) + intro
        body += _demographics(group) if section["type"] == "demographics" else _group(group)
        last = step == len(plan)
        pages.append(_page(section["type"], body, _nav(True, "Submit" if last else "Next", "submit" if last else "next"),
                           group))
    public = {
        "format": RESPONSE_FORMAT,
        "study_id": manifest["study_id"], "manifest_version": manifest["manifest_version"], "subset": subset,
        "declined": (consent or {}).get("declined", ""),
        "questions": [
            {"question_id": q["question_id"], "type": q["type"], "required": q["required"],
             "fields": q["fields"], "label": question_label(q)}
            for q in questions
        ],
    }
    data = embed_json(public, forbidden)
    script = (
        f'<script type="application/json" id="vs-manifest">{data}</script>'
        f"<script>{(STATIC / 'form.js').read_text()}</script>"
    )
    body = (
        f'<form id="study" novalidate>{"".join(pages)}<p id="status" role="status"></p></form>'
        '<div id="done" class="page" hidden><h2>Thank you!</h2><p></p></div>'
        '<div id="declined" class="page" hidden><h2>Thank you</h2><p></p></div>'
        '<dialog id="zoom"><p>Tap anywhere to close</p></dialog>'
    )
    return _document(manifest["title"], body, script)


def render_index(manifest: dict, assignment_salt: str) -> str:
    """Entry page: asks for the participant id (taken from Prolific's link when present) and sends the
    participant to the subset the collection server assigns; without one, to the subset a keyed hash
    of the id gives (see ``assignment``). Participants never choose."""
    data = json.dumps({"subsets": manifest["subsets"], "salt": assignment_salt})
    script = (
        f'<script type="application/json" id="vs-assign">{data}</script>'
        f"<script>{(STATIC / 'assign.js').read_text()}</script>"
    )
    body = (
        '<div class="page"><div class="intro">Please enter your participant ID to begin.</div>'
        '<form id="entry" novalidate><label class="field"><span>Participant ID</span>'
        '<input type="text" id="participant_id" name="participant_id" maxlength="128" autocomplete="off" '
        'autocapitalize="none" spellcheck="false"></label>'
        '<div class="nav"><button type="submit">Start</button></div><p id="status" role="status"></p></form></div>'
    )
    return _document(manifest["title"], body, script)


def assert_blind(name: str, text: str, forbidden: Iterable[str]) -> None:
    """Refuse to write a participant-facing page that names a method (even inside another word)."""
    for word in forbidden:
        if word.lower() in text.lower():
            raise VitalStudyError(
                f"{name}: the page would show the method name '{word}' to participants (blinding); "
                f"remove it from the study's texts"
            )


def render_pages(manifest: dict, forbidden: Iterable[str], assignment_salt: str) -> dict[str, str]:
    """File name -> HTML for every participant-facing page of the bundle."""
    if manifest["subsets"]:
        pages = {f"subset-{s}.html": render_form(manifest, s, forbidden) for s in manifest["subsets"]}
        pages["index.html"] = render_index(manifest, assignment_salt)
    else:
        pages = {"index.html": render_form(manifest, None, forbidden)}
    for name, text in pages.items():
        assert_blind(name, text, forbidden)
    return pages
