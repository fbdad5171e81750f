"""The Google Apps Script, executed in Chromium against a recording stand-in for FormApp/DriveApp.

The stand-in records every item in creation order; walking it with Google Forms' navigation rules
(a page break's "go to" applies when the page before it is finished) checks that each subset's
participants see exactly their questions, titled so the export maps back through the codebook.
"""

import csv
import re
from collections import Counter

import pytest
from forms_fixtures import browser, build  # noqa: F401 - browser is a fixture

from vitalstudy.study.forms_gas import SUBSET_ITEM

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
    getId: function () { return 1000 + api._index; },
    asTextItem: function () { return api; }, asMultipleChoiceItem: function () { return api; },
    createResponse: function (value) { return {title: it.title, value: value}; },
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
  addPageBreakItem: function () { return item("page"); },
  getId: function () { return "form-1"; },
  getItemById: function (id) { var it = log[id - 1000]; return {asTextItem: function () { return this; },
    asMultipleChoiceItem: function () { return this; },
    createResponse: function (v) { return {title: it.title, value: v}; }}; },
  getResponses: function () { return responses.map(function (r) { return {getItemResponses: function () {
    return Object.keys(r).map(function (t) { return {getItem: function () { return {getTitle: function () { return t; }}; },
                                                     getResponse: function () { return r[t]; }}; }); }}; }); },
  createResponse: function () {
    var filled = {};
    var pre = {withItemResponse: function (r) { filled[r.title] = r.value; return pre; },
               toPrefilledUrl: function () { return "https://forms/prefill?" + JSON.stringify(filled); }};
    return pre;
  }
};
var responses = [];  // submitted responses: item title -> answer
var properties = {};
var PropertiesService = {getScriptProperties: function () { return {
  setProperties: function (o) { Object.keys(o).forEach(function (k) { properties[k] = String(o[k]); }); },
  setProperty: function (k, v) { properties[k] = String(v); }, getProperty: function (k) { return k in properties ? properties[k] : null; },
  getProperties: function () { return Object.assign({}, properties); }}; }};
var locked = 0;
var LockService = {getScriptLock: function () { return {waitLock: function () { locked += 1; },
                                                        releaseLock: function () { locked -= 1; }}; }};
var Utilities = {getUuid: function () { return "key-1"; }, computeHmacSha256Signature: function (text, key) {
  var h = 2166136261, out = [];  // a stand-in keyed digest: FNV-1a of key + text, as 4 signed bytes
  (key + text).split("").forEach(function (c) { h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0; });
  for (var i = 0; i < 4; i++) out.push(((h >>> (8 * i)) & 0xff) - 128);
  return out; }};
var HtmlService = {createHtmlOutput: function (html) { return {html: html, setTitle: function () { return this; }}; }};
var FormApp = {PageNavigationType: {SUBMIT: "SUBMIT"}, create: function () { return form; },
               openById: function () { return form; }};
var DriveApp = {getFolderById: function () { return {getFilesByName: function (name) {
  var done = false;
  return {hasNext: function () { return !done; }, next: function () { done = true; return {getBlob: function () { return name; }}; }};
}}; }};
var Logger = {log: function () {}};
"""


def walk(log, subset):
    """Item titles a participant of `subset` meets, following Google Forms' page navigation."""
    chooser = next(i for i, it in enumerate(log) if it["title"] == SUBSET_ITEM)
    seen = list(log[: chooser + 1])
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
        assert set(titles) - {"Participant ID [participant_id]", SUBSET_ITEM} <= set(headers)
        n_expected_images = sum(len(q["stimuli"]) for q in manifest["questions"] if q["subset"] in (None, subset))
        assert sum(it["kind"] == "image" for it in seen) == n_expected_images
    scale = next(it for it in log if it["kind"] == "scale")
    assert scale["bounds"] == [1, 5]


ASSIGN_30 = """
buildForm();
var got = {};
for (var i = 0; i < 30; i++) {
  var pid = "sim-" + i, page = doGet({parameter: {PROLIFIC_PID: pid}}).html;
  var filled = JSON.parse(decodeURIComponent(page.split("prefill?")[1].split('"')[0]).replace(/&quot;/g, '"'));
  if (doGet({parameter: {PROLIFIC_PID: pid}}).html !== page) throw new Error("not stable for " + pid);
  got[pid] = filled[STUDY.subset_item];
  if (filled[STUDY.participant_item] !== pid) throw new Error("id not filled in");
  if (i % 3 === 0) { var r = {}; r[STUDY.participant_item] = pid; r[STUDY.subset_item] = got[pid]; responses.push(r); }
}
var later = Date.now() + HOLD_MS + 1000;  // the 20 who never submitted have let their places go
var afterHold = [];
for (var j = 0; j < 6; j++) afterHold.push(assignSubset("late-" + j, later));
return {got: got, afterHold: afterHold, again: assignSubset("SIM-3 ", later), locked: locked,
        entry: doGet({parameter: {}}).html};
"""


def test_apps_script_web_app_assigns_the_least_filled_part(browser, tmp_path):  # noqa: F811
    """doGet: 30 participants land in balanced parts, each gets the same part back, the form opens
    with id and part filled in; places of those who did not submit free up after the hold time."""
    _, study_dir, manifest = build(tmp_path)
    script = (study_dir / "forms" / "google_form.gs").read_text()
    page = browser.new_page()
    result = page.evaluate(f"() => {{ {STANDIN}\n{script}\n{ASSIGN_30} }}")
    counts = Counter(result["got"].values())
    assert set(counts) == set(manifest["subsets"]) and max(counts.values()) - min(counts.values()) <= 1, counts
    assert result["again"] == result["got"]["sim-3"] and result["locked"] == 0
    # after the hold, only the 10 submissions fill the parts: the late ones go where fewest submitted
    submitted = Counter(result["got"][f"sim-{i}"] for i in range(0, 30, 3))
    fill = {s: submitted.get(s, 0) for s in manifest["subsets"]}
    for subset in result["afterHold"]:
        assert fill[subset] == min(fill.values())
        fill[subset] += 1
    assert 'name="participant_id"' in result["entry"]
