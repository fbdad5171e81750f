"""Google Apps Script that builds the study as a Google Form (the paper collected with Google Forms).

The script is generated data, not logic: a JSON description of pages and items plus a short fixed
interpreter (``static/google_form.gs``). Item titles carry the question id in brackets (see
``item_title``) so a Google Forms CSV export maps back through the codebook. Images are read
from a Drive folder holding the uploaded ``stimuli/`` files, by their blinded names.
"""

from __future__ import annotations

import json
from pathlib import Path

from vitalstudy.study.assignment import hold_seconds
from vitalstudy.study.forms_html import visible

INTERPRETER = Path(__file__).parent / "static" / "google_form.gs"
# The titles of the Google Form's fixed items; a CSV export names its columns by them.
PARTICIPANT_ITEM = "Participant ID [participant_id]"
SUBSET_ITEM = "Your part (filled in for you; please leave it) [subset]"


def item_title(question: dict, field_name: str) -> str:
    """Google Form item title and export column header: the question id is always bracketed."""
    qid = question["question_id"]
    if field_name == "confidence":
        return f"Q{question['number']}. How confident are you? [{qid}:confidence]"
    if question["type"] == "demographics":
        return f"{question['prompt']} [{qid}]"
    return f"Q{question['number']}. {question['prompt']} [{qid}]"


def _items(question: dict) -> list[dict]:
    """Google Form items for one question: its images, then one item per answer field."""
    images = [{"kind": "image", "file": s["file"].split("/")[-1], "title": s["role"].replace("_", " ")}
              for s in question["stimuli"]]
    items = []
    for field in question["fields"]:
        title = item_title(question, field["field"])
        required = question["required"] and field.get("required", True)
        if field["kind"] == "likert":
            labels = field.get("labels", {})
            items.append({"kind": "scale", "title": title, "min": field["min"], "max": field["max"],
                          "low": labels.get(str(field["min"]), ""), "high": labels.get(str(field["max"]), ""),
                          "required": required})
        elif field["kind"] == "text":
            items.append({"kind": "text", "title": title, "required": required})
        else:
            items.append({"kind": "choice", "title": title, "options": field["options"], "required": required})
    return images + items


def _page(title: str, help_text: str, questions: list[dict]) -> dict:
    return {"title": title, "help": help_text, "items": [i for q in questions for i in _items(q)]}


def form_description(manifest: dict) -> dict:
    """Pages of the Google Form: shared sections, a subset choice, per-subset pages, demographics."""
    shared, tail = [], []
    for section in manifest["sections"]:
        own = [q for q in manifest["questions"] if q["section_id"] == section["section_id"]]
        if any(q["subset"] for q in own):
            continue
        page = _page(section["title"], section["instructions"], own)
        (tail if section["type"] == "demographics" else shared).append(page)
    branches = {}
    for subset in manifest["subsets"]:
        own = [q for q in visible(manifest, subset) if q["subset"] == subset]
        branches[subset] = [
            _page(s["title"], s["instructions"], [q for q in own if q["section_id"] == s["section_id"]])
            for s in manifest["sections"]
            if any(q["section_id"] == s["section_id"] for q in own)
        ]
    return {
        "title": manifest["title"],
        "description": "\n\n".join([manifest["welcome"], *([manifest["consent"]["text"]] if manifest.get("consent") else []),
                                    manifest["instructions"]]),
        "participant_item": PARTICIPANT_ITEM,
        "hold_seconds": hold_seconds(manifest),
        "subset_item": SUBSET_ITEM,
        "shared": shared,
        "branches": branches,
        "tail": tail,
    }


def apps_script(manifest: dict) -> str:
    header = (
        f"// Builds the Google Form of study '{manifest['study_id']}' "
        f"(manifest {manifest['manifest_version']}).\n"
        "// 1. Upload the files of forms/stimuli/ to a Google Drive folder; put its id below.\n"
        "// 2. Paste this file into a new Apps Script project (script.google.com) and run buildForm.\n"
        "// 3. Deploy the project as a web app (Deploy > New deployment > Web app; execute as: me; access:\n"
        "//    anyone) and send participants to its URL, e.g. on Prolific <web app URL>?PROLIFIC_PID={{%PROLIFIC_PID%}}.\n"
        "//    It assigns each new participant the least-filled part (doGet below) and opens the form with\n"
        "//    their id and part filled in: participants never choose. (Google Forms cannot hide or lock\n"
        "//    that item: someone who changes it answers the other part; only the HTML forms' server refuses that.)\n"
        "// Order: a Google Form branches once and cannot re-join and branch again, so sections everyone\n"
        "// sees come first, then each part's own sections, then demographics (the HTML forms keep the\n"
        "// spec's order). The consent text is part of the form's description; Google Forms has no\n"
        "// consent step that stores nothing on declining, so a participant who declines just closes it.\n"
    )
    data = json.dumps(form_description(manifest), indent=1)
    return header + f"var STIMULI_FOLDER_ID = 'PASTE_DRIVE_FOLDER_ID';\nvar STUDY = {data};\n\n" + INTERPRETER.read_text()
