"""The participant's view in headless Chromium: fill every question type, submit, find the row.

Uses Debian's Chromium (``scripts/ensure-browser.sh``); Playwright never downloads a browser here.
Set VITALSTUDY_SCREENSHOT_DIR to keep the screenshots the test takes.
"""

import json
import os
import shutil
import sqlite3
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from forms_fixtures import browser, build  # noqa: F401 - browser is a fixture

from vitalstudy.study.server import make_server
from vitalstudy.study.submission import validate

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    _, study_dir, manifest = build(tmp_path_factory.mktemp("browser"))
    return study_dir / "forms", manifest


@pytest.fixture
def server(bundle, tmp_path):
    srv = make_server(bundle[0], tmp_path / "db.sqlite", port=0, completion_code="C0MPLETE")
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", tmp_path / "db.sqlite"
    srv.shutdown()
    srv.server_close()


def screenshot(page, tmp_path, name):
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("VITALSTUDY_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)


def fill_visible_page(page):
    """Answer every question on the shown page: likert 4, confidence 3, 2AFC 'B', text, first option."""
    current = page.locator("section.page:not([hidden])")
    radios = current.locator("input[type=radio]")
    for name in sorted({radios.nth(i).get_attribute("name") for i in range(radios.count())}):
        value = "3" if name.endswith(":confidence") else ("B" if name.startswith("two_afc") else "4")
        current.locator(f'input[name="{name}"][value="{value}"]').check()
    texts = current.locator("input[type=text]:not(#participant_id)")
    for i in range(texts.count()):
        texts.nth(i).fill("a cup of coffee")
    selects = current.locator("select")
    for i in range(selects.count()):
        selects.nth(i).select_option(index=1)
    return current


def complete_form(page, tmp_path, shots=True):
    """Page through the form, answering everything; stops after clicking Submit."""
    page.click("section.page:not([hidden]) [data-action=next]")  # welcome -> first section
    n = 1
    while True:
        current = fill_visible_page(page)
        if shots:
            screenshot(page, tmp_path, f"form-page-{n}.png")
        if current.locator("[data-action=submit]").count():
            current.locator("[data-action=submit]").click()
            return
        current.locator("[data-action=next]").click()
        n += 1


def test_fill_every_question_type_and_submit(browser, bundle, server, tmp_path):
    forms, manifest = bundle
    base, db = server
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(f"{base}/subset-2.html?PROLIFIC_PID=pp-001&STUDY_ID=study9&SESSION_ID=sess7")
    assert page.input_value("#participant_id") == "pp-001"
    assert page.locator("#participant_id").get_attribute("readonly") is not None
    complete_form(page, tmp_path)
    page.wait_for_url("**/complete?submission=*", timeout=10_000)
    assert "C0MPLETE" in page.inner_text("body")
    screenshot(page, tmp_path, "completion.png")

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT participant_id, subset, payload FROM submissions").fetchall()
    assert len(rows) == 1 and rows[0][:2] == ("pp-001", "2")
    stored = json.loads(rows[0][2])
    assert stored["prolific"] == {"PROLIFIC_PID": "pp-001", "STUDY_ID": "study9", "SESSION_ID": "sess7"}
    assert stored["format"] == "vitalstudy.response/1"
    visible = [q for q in manifest["questions"] if q["subset"] in (None, "2")]
    assert set(stored["answers"]) == {q["question_id"] for q in visible}
    types = {q["type"] for q in visible}
    assert types == {"likert_word", "likert_references", "free_label", "two_afc", "demographics"}
    for q in visible:
        answer = stored["answers"][q["question_id"]]
        first_option = q["fields"][0].get("options", [None])[0]
        expected = {"two_afc": {"choice": "B", "confidence": 3}, "free_label": "a cup of coffee",
                    "demographics": first_option}.get(q["type"], 4)
        assert answer == expected, q["question_id"]
    assert stored["timings_ms"] and set(stored["timings_ms"]) <= set(stored["answers"])
    assert stored["started_at"] <= stored["submitted_at"]


def test_unanswered_questions_block_the_next_page(browser, bundle, server):
    base, db = server
    page = browser.new_page()
    page.goto(f"{base}/index.html")
    page.click("a.subset >> nth=0")
    page.click("section.page:not([hidden]) [data-action=next]")
    assert "participant ID" in page.inner_text("#status")
    page.fill("#participant_id", "walk in")
    page.click("section.page:not([hidden]) [data-action=next]")
    assert "letters, digits" in page.inner_text("#status")
    page.fill("#participant_id", "walk-in-1")
    page.click("section.page:not([hidden]) [data-action=next]")
    page.click("section.page:not([hidden]) [data-action=next]")
    assert page.inner_text("#status").startswith("Please answer: Q1 (a)")


def test_prolific_participants_are_assigned_a_subset(browser, server):
    base, _ = server
    page = browser.new_page()
    page.goto(f"{base}/?PROLIFIC_PID=abc&STUDY_ID=s&SESSION_ID=t")
    page.wait_for_url("**/subset-*.html?PROLIFIC_PID=abc*")
    assert page.input_value("#participant_id") == "abc"


def test_opened_from_disk_offers_a_json_download(browser, bundle, tmp_path):
    forms, manifest = bundle
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto((forms / "subset-3.html").as_uri())
    assert page.locator("img").first.evaluate("img => img.complete && img.naturalWidth > 0") is not None
    page.fill("#participant_id", "offline-7")
    with page.expect_download() as download:
        complete_form(page, tmp_path, shots=False)
    saved = tmp_path / "response.json"
    download.value.save_as(saved)
    data = json.loads(saved.read_text())
    assert validate(data, manifest) and data["participant_id"] == "offline-7" and data["subset"] == "3"
    assert "Please send this file" in page.inner_text("#done")
    context.close()


def test_on_a_static_host_without_server_the_answers_can_be_downloaded(browser, bundle, tmp_path):
    forms, manifest = bundle
    handler = partial(SimpleHTTPRequestHandler, directory=str(forms))
    static = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=static.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{static.server_address[1]}/subset-1.html")
        page.fill("#participant_id", "static-1")
        complete_form(page, tmp_path, shots=False)
        button = page.locator("#status button")
        button.wait_for()
        assert "could not be stored here (501)" in page.inner_text("#status")
        with page.expect_download() as download:
            button.click()
        saved = tmp_path / "response.json"
        download.value.save_as(saved)
        assert validate(json.loads(saved.read_text()), manifest)["participant_id"] == "static-1"
        context.close()
    finally:
        static.shutdown()
        static.server_close()
