"""Self-contained static HTML forms, one per subset, plus an ``index.html`` entry page.

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
    return f"Q{q['number']}" + (f" ({q['position']})" if q.get("position") else "")


def _img(stimulus: dict, alt: str) -> str:
    return f'<img src="{esc(stimulus["file"])}" alt="{esc(alt)}" loading="lazy">'


def _likert(name: str, field: dict) -> str:
    labels = field.get("labels", {})
    boxes = "".join(
        f'<label><input type="radio" name="{esc(name)}" value="{v}">{v}</label>'
        for v in range(field["min"], field["max"] + 1)
    )
    low, high = labels.get(str(field["min"]), ""), labels.get(str(field["max"]), "")
    return f'<div class="scale"><span class="end">{esc(low)}</span>{boxes}<span class="end">{esc(high)}</span></div>'


def _widget(q: dict) -> str:
    field = q["fields"][0]
    name = q["question_id"]
    if field["kind"] == "likert":
        return _likert(name, field)
    if field["kind"] == "text":
        return f'<input type="text" name="{esc(name)}" maxlength="{field["max_length"]}" autocomplete="off">'
    options = "".join(f'<option value="{esc(o)}">{esc(o)}</option>' for o in field["options"])
    return f'<select name="{esc(name)}"><option value="">(no answer)</option>{options}</select>'


def _two_afc(q: dict) -> str:
    visuals = "".join(_img(s, "visualization") for s in q["stimuli"] if s["role"] in ("fv", "reference"))
    queries = {s["role"]: s for s in q["stimuli"]}
    figures = "".join(
        f'<figure>{_img(queries[role], "photo " + side)}<figcaption>'
        f'<label><input type="radio" name="{esc(q["question_id"])}" value="{side}"> {side}</label>'
        f"</figcaption></figure>"
        for role, side in (("query_a", "A"), ("query_b", "B"))
    )
    confidence = q["fields"][1]
    return (
        f'<p class="caption">What the unit responds to:</p><div class="row">{visuals}</div>'
        f'<p class="caption">Which photo makes it respond more?</p><div class="queries">{figures}</div>'
        f'<p>How confident are you?</p>{_likert(q["question_id"] + ":confidence", confidence)}'
    )


def _group(questions: list[dict]) -> str:
    """One numbered question: its prompt and references once, then each rated stimulus."""
    first = questions[0]
    refs = [s for s in first["stimuli"] if s["role"] == "reference"]
    head = f'<legend>Q{first["number"]}. {esc(first["prompt"])}</legend>'
    if first["type"] == "two_afc":
        return f'<fieldset class="question">{head}{_two_afc(first)}</fieldset>'
    body = f'<div class="row">{"".join(_img(s, "reference image") for s in refs)}</div>' if refs else ""
    for q in questions:
        fvs = "".join(_img(s, "image to rate") for s in q["stimuli"] if s["role"] == "fv")
        caption = f'<span class="caption">{esc(question_label(q))}</span>' if len(questions) > 1 else ""
        body += f'<div class="item">{caption}{fvs}{_widget(q)}</div>'
    return f'<fieldset class="question">{head}{body}</fieldset>'


def _nav(first: bool, last: bool) -> str:
    back = "" if first else '<button type="button" data-action="back">Back</button>'
    forward = "Submit" if last else ("Start" if first else "Next")
    action = "submit" if last else "next"
    return f'<div class="nav">{back}<button type="button" data-action="{action}">{forward}</button></div>'


def _page(body: str, questions: Iterable[dict], first: bool, last: bool) -> str:
    ids = " ".join(q["question_id"] for q in questions)
    return f'<section class="page" data-questions="{esc(ids)}">{body}{_nav(first, last)}</section>'


def _document(title: str, body: str, script: str = "") -> str:
    css = (STATIC / "form.css").read_text()
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{css}</style></head>\n"
        f"<body><main><h1>{esc(title)}</h1>\n{body}\n</main>{script}</body></html>\n"
    )


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


def render_form(manifest: dict, subset: str | None, forbidden: Iterable[str]) -> str:
    """The participant's form for one subset: welcome, one page per section, submit."""
    questions = visible(manifest, subset)
    welcome = (
        f'<div class="intro">{esc(manifest["welcome"])}</div><h2>Instructions</h2>'
        f'<div class="intro">{esc(manifest["instructions"])}</div>'
        '<p><label>Participant ID <input type="text" id="participant_id" name="participant_id" '
        'maxlength="128" autocomplete="off"></label></p>'
    )
    sections = [s for s in manifest["sections"] if any(q["section_id"] == s["section_id"] for q in questions)]
    pages = [_page(welcome, [], True, not sections)]
    for i, section in enumerate(sections):
        own = [q for q in questions if q["section_id"] == section["section_id"]]
        groups = "".join(_group(list(g)) for _, g in groupby(own, key=lambda q: q["number"]))
        intro = f'<h2>{esc(section["title"])}</h2><div class="intro">{esc(section["instructions"])}</div>'
        pages.append(_page(intro + groups, own, False, i == len(sections) - 1))
    public = {
        "format": RESPONSE_FORMAT,
        "study_id": manifest["study_id"], "manifest_version": manifest["manifest_version"], "subset": subset,
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
        '<div id="done" hidden><h2>Thank you!</h2><p></p></div>'
    )
    return _document(manifest["title"], body, script)


def render_index(manifest: dict) -> str:
    """Entry page: participants pick a subset; Prolific participants are assigned one by their id."""
    links = "".join(
        f'<li><a class="subset" href="subset-{s}.html">Part {s}</a></li>' for s in manifest["subsets"]
    )
    script = (
        "<script>(function(){var q=window.location.search,p=new URLSearchParams(q).get('PROLIFIC_PID');"
        "var a=document.querySelectorAll('a.subset');a.forEach(function(x){x.href+=q;});"
        "if(p){var h=0;for(var i=0;i<p.length;i++)h=(h*31+p.charCodeAt(i))>>>0;"
        "window.location.replace(a[h%a.length].href);}})();</script>"
    )
    body = (
        f'<div class="page"><div class="intro">{esc(manifest["welcome"])}</div>'
        f"<p>Please choose one of the following parts:</p><ul>{links}</ul></div>"
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


def render_pages(manifest: dict, forbidden: Iterable[str]) -> dict[str, str]:
    """File name -> HTML for every participant-facing page of the bundle."""
    if manifest["subsets"]:
        pages = {f"subset-{s}.html": render_form(manifest, s, forbidden) for s in manifest["subsets"]}
        pages["index.html"] = render_index(manifest)
    else:
        pages = {"index.html": render_form(manifest, None, forbidden)}
    for name, text in pages.items():
        assert_blind(name, text, forbidden)
    return pages
