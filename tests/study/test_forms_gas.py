"""The Google Apps Script, executed in Chromium against a recording stand-in for FormApp/DriveApp.

The stand-in records every item in creation order; walking it with Google Forms' navigation rules
(a page break's "go to" applies when the page before it is finished) checks that each subset's
participants see exactly their questions, titled so the export maps back through the codebook.
"""

import csv
import re

import pytest
from forms_fixtures import browser, build  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.browser

STANDIN = """
var log = [];
function item(kind) {
  var it = {kind: kind, title: null, required: false, choices: null, goTo: null, image: null};
  var api = {
    setTitle: function (t) { it.title = t; return api; },
    setRequired: function (r) { it.required = r; return api; },
    setHelpText: function () { return api; },
    setBounds: function (a, b) { it.bounds = [a, b]; return api; },
    setLabels: function () { return api; },
    setImage: function (blob) { it.image = blob; return api; },
    setChoiceValues: function (v) { it.choices = v.map(function (x) { return {value: x, nav: null}; }); return api; },
    createChoice: function (v, page) { return {value: v, nav: page._index}; },
    setChoices: function (c) { it.choices = c; return api; },
    setGoToPage: function (p) { it.goTo = typeof p === "string" ? p : p._index; return api; },
    _index: log.length
  };
  log.push(it);
  return api;
}
var form = {
  setDescription: function () { return form; }, setCollectEmail: function () { return form; },
  setProgressBar: function () { return form; }, getEditUrl: function () { return "url"; },
  addTextItem: function () { return item("text"); }, addScaleItem: function () { return item("scale"); },
  addMultipleChoiceItem: function () { return item("choice"); }, addImageItem: function () { return item("image"); },
  addPageBreakItem: function () { return item("page"); }
};
var FormApp = {PageNavigationType: {SUBMIT: "SUBMIT"}, create: function () { return form; }};
var DriveApp = {getFolderById: function () { return {getFilesByName: function (name) {
  var done = false;
  return {hasNext: function () { return !done; }, next: function () { done = true; return {getBlob: function () { return name; }}; }};
}}; }};
var Logger = {log: function () {}};
"""


def walk(log, subset):
    """Item titles a participant of `subset` meets, following Google Forms' page navigation."""
    chooser = next(i for i, it in enumerate(log) if it["title"] == "Choose a part [subset]")
    seen = [it for it in log[: chooser + 1]]
    p = next(c["nav"] for c in log[chooser]["choices"] if c["value"] == subset)
    linear = False
    while p < len(log):
        it = log[p]
        if it["kind"] == "page" and linear and it["goTo"] is not None:
            if it["goTo"] == "SUBMIT":
                break
            p, linear = it["goTo"], False
            continue
        seen.append(it)
        p, linear = p + 1, True
    return seen


def test_apps_script_builds_the_same_study(browser, tmp_path):  # noqa: F811
    _, study_dir, manifest = build(tmp_path)
    forms = study_dir / "forms"
    script = (forms / "google_form.gs").read_text()
    page = browser.new_page()
    log = page.evaluate(f"() => {{ {STANDIN}\n{script}\nbuildForm(); return log; }}")
    with (forms / "codebook.csv").open() as f:
        headers = {r["column_header"]: r for r in csv.DictReader(f)}

    images = {it["image"] for it in log if it["kind"] == "image"}
    assert images == {p.name for p in (forms / "stimuli").iterdir()}
    assert log[0]["title"] == "Participant ID [participant_id]" and log[0]["required"]

    for subset in manifest["subsets"]:
        seen = walk(log, subset)
        titles = [it["title"] for it in seen if it["kind"] in ("text", "scale", "choice")]
        ids = {re.search(r"\[([^\]:]+)(?::confidence)?\]$", t).group(1) for t in titles}
        expected = {q["question_id"] for q in manifest["questions"] if q["subset"] in (None, subset)}
        assert ids == expected | {"participant_id", "subset"}, subset
        assert set(titles) - {"Participant ID [participant_id]", "Choose a part [subset]"} <= set(headers)
        n_expected_images = sum(len(q["stimuli"]) for q in manifest["questions"] if q["subset"] in (None, subset))
        assert sum(it["kind"] == "image" for it in seen) == n_expected_images
    scale = next(it for it in log if it["kind"] == "scale")
    assert scale["bounds"] == [1, 5]
