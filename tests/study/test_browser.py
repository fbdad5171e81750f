"""The participant's view in headless Chromium, at phone (375 px, touch) and desktop (1280 px) width.

Every page type (entry, welcome, consent, each question type, demographics, the enlarged image,
completion, declined) is checked for horizontal overflow and for touch targets of 44 px, is operated
without forced clicks (taps on the phone), and is saved as a screenshot artifact under
``<pytest basetemp>/artifacts/browser`` (or $VITALSTUDY_SCREENSHOT_DIR). Uses Debian's Chromium
(``scripts/ensure-browser.sh``); Playwright never downloads a browser here. Under CI=true a missing
Chromium fails these tests.
"""

import json
import os
import sqlite3
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from forms_fixtures import browser, build  # noqa: F401 - browser is a fixture

from vitalstudy.study.assignment import static_salt, static_subset
from vitalstudy.study.server import make_server
from vitalstudy.study.submission import validate

pytestmark = pytest.mark.browser

CONSENT = {"text": "We record your answers under a pseudonym.\nYou may stop at any time.",
           "agree": "I agree to take part in this study."}
COMPLETION = {"code": "C0MPLETE", "url": "https://app.prolific.com/submissions/complete?cc={code}"}
PHONE = {"viewport": {"width": 375, "height": 740}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
WIDTHS = {375: PHONE, 1280: DESKTOP}

# Everything visible wider than the viewport or hanging off its edges; and the document's own width.
OVERFLOW = """() => {
  const w = document.documentElement.clientWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (!r.width || getComputedStyle(el).visibility === 'hidden') continue;
    if (r.left < -0.5 || r.right > w + 0.5) out.push(el.tagName + '.' + el.className + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
  if (document.documentElement.scrollWidth > w) out.push('document scrollWidth ' + document.documentElement.scrollWidth);
  return out;
}"""
SHOWN_IMAGES_LOADED = "() => [...document.images].filter(i => i.getClientRects().length).every(i => i.complete)"
# What a finger must hit: buttons, links styled as buttons, text boxes, selects, and the label around
# each radio / tick box (the box itself is only part of the target).
SMALL_TARGETS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('button, a.button, input, select')) {
    if (el.type === 'hidden') continue;
    const target = (el.type === 'radio' || el.type === 'checkbox') ? el.closest('label') : el;
    const r = target.getBoundingClientRect();
    if (!r.width) continue;  // not on the shown screen
    if (r.width < 44 || r.height < 44) out.push((el.name || el.id || el.textContent) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
  }
  return out;
}"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    _, study_dir, manifest = build(tmp_path_factory.mktemp("browser"), consent=CONSENT, completion=COMPLETION)
    return study_dir / "forms", manifest


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    keep = os.environ.get("VITALSTUDY_SCREENSHOT_DIR")
    folder = Path(keep) if keep else tmp_path_factory.getbasetemp() / "artifacts" / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def server(bundle, tmp_path):
    srv = make_server(bundle[0], tmp_path / "db.sqlite", port=0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", tmp_path / "db.sqlite"
    srv.shutdown()
    srv.server_close()


def stored(db):
    with sqlite3.connect(db) as conn:
        submissions = conn.execute("SELECT participant_id, subset, payload FROM submissions").fetchall()
        assignments = conn.execute("SELECT participant_key, subset FROM assignments").fetchall()
    return submissions, dict(assignments)


def check_page(page, artifacts, name):
    """No overflow, no small touch target, and a screenshot of the whole page."""
    page.wait_for_function(SHOWN_IMAGES_LOADED)
    assert page.evaluate(OVERFLOW) == [], name
    assert page.evaluate(SMALL_TARGETS) == [], name
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def shown(page):
    return page.locator("section.page:not([hidden])")


def press(locator, touch):
    locator.tap() if touch else locator.click()


def answer_screen(page, touch, choice="B", rating="4", text="a cup of coffee"):
    """Answer every input of the shown screen as a participant would: tap the option labels, type."""
    current = shown(page)
    radios = current.locator("input[type=radio]")
    for name in sorted({radios.nth(i).get_attribute("name") for i in range(radios.count())}):
        value = "3" if name.endswith(":confidence") else (choice if name.startswith("two_afc") else rating)
        press(current.locator(f'label.option:has(input[name="{name}"][value="{value}"])'), touch)
        assert current.locator(f'input[name="{name}"][value="{value}"]').is_checked()
    texts = current.locator("input[type=text]:not(#participant_id)")
    for i in range(texts.count()):
        press(texts.nth(i), touch)
        texts.nth(i).fill(text)
    selects = current.locator("select")
    for i in range(selects.count()):
        selects.nth(i).select_option(index=1)
    return current


def answer_to_the_end(page, touch, **answers):
    """Answer the shown screen and every later one, stopping on the screen with Submit."""
    while True:
        answer_screen(page, touch, **answers)
        if shown(page).locator("[data-action=submit]").count():
            return
        press(next_button(page), touch)


def welcome_and_consent(page, touch):
    """Start on the welcome screen, tick the consent box, continue to the first question."""
    press(next_button(page), touch)
    (press(shown(page).locator("label.tick"), touch) if touch else page.check("#consent_agree"))
    press(next_button(page), touch)


def kind(page):
    return shown(page).get_attribute("data-kind")


def next_button(page):
    return shown(page).locator("[data-action=next], [data-action=submit]")


def expected(manifest, subset, choice="B", rating=4, text="a cup of coffee"):
    out = {}
    for q in manifest["questions"]:
        if q["subset"] not in (None, subset):
            continue
        out[q["question_id"]] = {"two_afc": {"choice": choice, "confidence": 3}, "free_label": text,
                                 "demographics": q["fields"][0].get("options", [None])[0]}.get(q["type"], rating)
    return out


@pytest.mark.parametrize("width", [375, 1280])
def test_every_page_type_fits_is_operable_and_completes(browser, bundle, server, artifacts, width):
    """Entry -> assigned subset -> welcome -> consent -> every question type -> completion page."""
    _, manifest = bundle
    base, db = server
    touch = width == 375
    context = browser.new_context(**WIDTHS[width])
    page = context.new_page()
    page.goto(f"{base}/")
    check_page(page, artifacts, f"{width}-entry")
    page.fill("#participant_id", f"tap-{width}")
    press(page.locator("#entry button[type=submit]"), touch)
    page.wait_for_url("**/subset-*.html?participant_id=*")
    subset = page.url.split("subset-")[1].split(".html")[0]
    assert kind(page) == "welcome" and page.input_value("#participant_id") == f"tap-{width}"
    check_page(page, artifacts, f"{width}-welcome")
    press(next_button(page), touch)
    page.wait_for_selector('section.page[data-kind="consent"]:not([hidden])')
    press(next_button(page), touch)
    assert "consent box" in page.inner_text("#status")  # the tick is required
    press(shown(page).locator("label.tick"), touch)
    check_page(page, artifacts, f"{width}-consent")
    press(next_button(page), touch)
    seen, steps = set(), 0
    while True:
        steps += 1
        progress = shown(page).locator(".progress p").inner_text()
        assert progress.startswith(f"Question {steps} of "), progress
        answer_screen(page, touch)
        if kind(page) not in seen:
            seen.add(kind(page))
            check_page(page, artifacts, f"{width}-{kind(page)}")
        if kind(page) == "two_afc" and "zoom" not in seen:
            seen.add("zoom")
            press(shown(page).locator(".queries .zoom").first, touch)
            page.wait_for_selector("dialog#zoom[open]")
            box = page.locator("dialog#zoom img").bounding_box()
            assert box["width"] >= min(0.85 * width, 600), box  # larger than the tile it came from
            assert page.evaluate(OVERFLOW) == []
            page.screenshot(path=str(artifacts / f"{width}-zoom.png"))
            press(page.locator("dialog#zoom"), touch)
            page.wait_for_selector("dialog#zoom:not([open])", state="attached")
        if shown(page).locator("[data-action=submit]").count():
            break
        press(next_button(page), touch)
    assert seen >= {"free_label", "likert_word", "likert_references", "two_afc", "demographics", "zoom"}
    assert progress == f"Question {steps} of {steps}"
    press(next_button(page), touch)
    page.wait_for_url("**/complete?submission=*")
    assert page.inner_text("#code") == "C0MPLETE"
    refresh = page.locator('meta[http-equiv="refresh"]').get_attribute("content")
    assert refresh.endswith("url=https://app.prolific.com/submissions/complete?cc=C0MPLETE")
    assert page.locator('meta[name="viewport"]').count() == 1
    check_page(page, artifacts, f"{width}-complete")
    context.close()

    submissions, assignments = stored(db)
    assert [(p, s) for p, s, _ in submissions] == [(f"tap-{width}", subset)] and list(assignments.values()) == [subset]
    assert f"tap-{width}" not in assignments  # the table keeps a keyed hash, not the id
    payload = json.loads(submissions[0][2])
    assert payload["answers"] == expected(manifest, subset)
    assert set(payload["timings_ms"]) <= set(payload["answers"])


def test_two_afc_visualizations_are_as_large_as_the_photos(browser, bundle):
    forms, _ = bundle
    for width, options in WIDTHS.items():
        context = browser.new_context(**options)
        page = context.new_page()
        page.goto((forms / "subset-1.html").as_uri())
        page.evaluate("document.querySelectorAll('section.page').forEach(p => p.hidden = p.dataset.kind !== 'two_afc' "
                      "|| p !== document.querySelector('section.page[data-kind=two_afc]'))")
        page.wait_for_function(SHOWN_IMAGES_LOADED)
        fvs = [page.locator("section.page:not([hidden]) .gallery:not(.queries) img").nth(i).bounding_box()
               for i in range(page.locator("section.page:not([hidden]) .gallery:not(.queries) img").count())]
        photos = [page.locator("section.page:not([hidden]) .queries img").nth(i).bounding_box() for i in range(2)]
        assert fvs and all(b["width"] == b["height"] for b in fvs + photos)  # letterboxed squares
        assert min(b["width"] for b in fvs) >= max(b["width"] for b in photos) >= min(224, 0.4 * width)
        context.close()


@pytest.mark.parametrize("width", [320, 430])
def test_every_screen_fits_phones_from_320_to_430_px(browser, bundle, width):
    """Each screen of each subset's form, the entry page and the server's pages, shown in turn."""
    from vitalstudy.study.forms_html import completion_page, message_page

    forms, manifest = bundle
    context = browser.new_context(viewport={"width": width, "height": 700}, has_touch=True, is_mobile=True)
    page = context.new_page()
    for subset in manifest["subsets"]:
        page.goto((forms / f"subset-{subset}.html").as_uri())
        for index in range(page.locator("section.page").count()):
            page.evaluate("i => document.querySelectorAll('section.page').forEach((p, j) => p.hidden = j !== i)", index)
            page.wait_for_function(SHOWN_IMAGES_LOADED)
            where = f"subset {subset}, screen {index}"
            assert page.evaluate(OVERFLOW) == [], where
            assert page.evaluate(SMALL_TARGETS) == [], where
    page.goto((forms / "index.html").as_uri())
    assert page.evaluate(OVERFLOW) == [] and page.evaluate(SMALL_TARGETS) == []
    for html in (completion_page("A study title that is rather long for a phone", "CODE-1234567890-ABCDEFGHIJ",
                                 "https://app.prolific.com/submissions/complete?cc=CODE-1234567890-ABCDEFGHIJ"),
                 message_page("Unknown submission", "<p>No submission with this id was received.</p>")):
        page.set_content(html)
        assert page.evaluate(OVERFLOW) == [] and page.evaluate(SMALL_TARGETS) == []
    context.close()


def test_reload_mid_study_resumes_at_the_same_question_with_answers_kept(browser, bundle, server):
    _, manifest = bundle
    base, db = server
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(f"{base}/?PROLIFIC_PID=resume-1&STUDY_ID=s1&SESSION_ID=x1")
    page.wait_for_url("**/subset-*.html?*")
    subset = page.url.split("subset-")[1].split(".html")[0]
    welcome_and_consent(page, True)
    for _ in range(3):  # questions 1-3 answered (rating 2 / choice A), question 4 half answered
        answer_screen(page, True, choice="A", rating="2", text="an espresso")
        press(next_button(page), True)
    assert shown(page).locator(".progress p").inner_text().startswith("Question 4 of")
    first_radio = shown(page).locator("input[type=radio]").first
    if first_radio.count():
        press(shown(page).locator("label.option").first, True)
    half = shown(page).locator("input[type=radio]:checked, input[type=text]").first
    half_name = half.get_attribute("name") if half.count() else None
    page.reload()
    assert shown(page).locator(".progress p").inner_text().startswith("Question 4 of")
    if half_name and first_radio.count():
        assert shown(page).locator(f'input[name="{half_name}"]:checked').count() == 1
    for _ in range(3):
        press(shown(page).locator("[data-action=back]"), True)
    assert shown(page).locator(".progress p").inner_text().startswith("Question 1 of")
    assert shown(page).locator("input:checked").count() + shown(page).locator("input[type=text]").count() > 0
    texts = shown(page).locator("input[type=text]")
    for i in range(texts.count()):
        assert texts.nth(i).input_value() == "an espresso"
    for _ in range(3):
        press(next_button(page), True)
    answer_to_the_end(page, True)  # the rest with other answers
    press(next_button(page), True)
    page.wait_for_url("**/complete?submission=*")
    payload = json.loads(stored(db)[0][0][2])
    early = [q for q in manifest["questions"] if q["subset"] in (None, subset)]
    numbers = []  # the question screens in order: (section, number) groups
    for q in early:
        if q["type"] != "demographics" and (q["section_id"], q["number"]) not in numbers:
            numbers.append((q["section_id"], q["number"]))
    for q in early:
        if (q["section_id"], q["number"]) in numbers[:3]:
            assert payload["answers"][q["question_id"]] == expected(manifest, subset, "A", 2, "an espresso")[q["question_id"]]
    assert payload["prolific"] == {"PROLIFIC_PID": "resume-1", "STUDY_ID": "s1", "SESSION_ID": "x1"}
    page.goto(f"{base}/subset-{subset}.html?PROLIFIC_PID=resume-1")  # after submitting: back to the code
    page.wait_for_url("**/complete?submission=*")
    context.close()


def test_declining_consent_stores_nothing(browser, bundle, server, artifacts):
    base, db = server
    for width, options in WIDTHS.items():
        context = browser.new_context(**options)
        page = context.new_page()
        page.goto(f"{base}/?PROLIFIC_PID=no-{width}&STUDY_ID=s&SESSION_ID=t")
        page.wait_for_url("**/subset-*.html?*")
        assert len(stored(db)[1]) == 1  # assigned on arrival
        press(next_button(page), width == 375)
        press(shown(page).locator("[data-action=decline]"), width == 375)
        page.wait_for_selector("#declined:not([hidden])")
        assert "Nothing has been stored" in page.inner_text("#declined")
        assert "return the study" in page.inner_text("#declined")
        check_page(page, artifacts, f"{width}-declined")
        page.wait_for_function("() => true")
        assert page.evaluate("Object.keys(localStorage)") == []
        page.wait_for_timeout(200)
        context.close()
    submissions, assignments = stored(db)
    assert submissions == [] and assignments == {}


def test_submit_retries_on_network_errors_and_stores_once(browser, bundle, server):
    """The first POST reaches the server but its answer is lost, the second fails outright; the third
    (same submission id) is acknowledged as a duplicate: one row, completion page."""
    base, db = server
    page = browser.new_context(**DESKTOP).new_page()
    calls = []

    def flaky(route):
        calls.append(route.request.post_data_json["submission_id"])
        if len(calls) == 1:
            route.fetch()
            return route.abort("connectionreset")
        if len(calls) == 2:
            return route.abort("internetdisconnected")
        return route.continue_()

    page.route("**/api/submit", flaky)
    page.goto(f"{base}/?participant_id=retry-1")
    page.wait_for_url("**/subset-*.html?*")
    welcome_and_consent(page, False)
    answer_to_the_end(page, False)
    press(next_button(page), False)
    page.wait_for_selector("#status:has-text('Trying again')")
    page.wait_for_url("**/complete?submission=*", timeout=15_000)
    assert len(calls) == 3 and len(set(calls)) == 1
    submissions, _ = stored(db)
    assert len(submissions) == 1 and json.loads(submissions[0][2])["submission_id"] == calls[0]


def test_unanswered_questions_block_the_next_screen(browser, bundle, server):
    base, _ = server
    page = browser.new_page()
    page.goto(f"{base}/subset-1.html")
    press(next_button(page), False)
    assert "participant ID" in page.inner_text("#status")
    page.fill("#participant_id", "walk in")
    press(next_button(page), False)
    assert "letters, digits" in page.inner_text("#status")
    page.fill("#participant_id", "walk-in-1")
    welcome_and_consent(page, False)
    press(next_button(page), False)
    assert page.inner_text("#status") == "Please answer: this question"  # the free label of screen 1


def test_a_participant_on_another_subsets_page_is_sent_to_their_own(browser, server):
    base, db = server
    page = browser.new_page()
    page.goto(f"{base}/?participant_id=moved-1")
    page.wait_for_url("**/subset-*.html?*")
    assigned = page.url.split("subset-")[1].split(".html")[0]
    other = "1" if assigned != "1" else "2"
    page.goto(f"{base}/subset-{other}.html")
    page.fill("#participant_id", "moved-1")
    press(next_button(page), False)
    page.wait_for_url(f"**/subset-{assigned}.html?participant_id=moved-1")
    assert list(stored(db)[1].values()) == [assigned]


def test_static_entry_page_assigns_by_the_python_rule(browser, bundle):
    forms, manifest = bundle
    salt = static_salt(forms.parent / "private")
    page = browser.new_page()
    for pid in ("a1", "Bob.smith", "x-99", "P@1", "zz_top"):
        page.goto((forms / "index.html").as_uri() + f"?participant_id={pid}")
        page.wait_for_url("**/subset-*.html?*")
        assert f"subset-{static_subset(salt, pid, manifest['subsets'])}.html" in page.url
        assert page.input_value("#participant_id") == pid


def test_opened_from_disk_offers_a_json_download(browser, bundle, tmp_path):
    forms, manifest = bundle
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto((forms / "subset-3.html").as_uri())
    page.fill("#participant_id", "offline-7")
    welcome_and_consent(page, False)
    answer_to_the_end(page, False)
    with page.expect_download() as download:
        press(next_button(page), False)
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
        page.goto(f"http://127.0.0.1:{static.server_address[1]}/?participant_id=static-1")
        page.wait_for_url("**/subset-*.html?*")  # the static rule: no api/assign here
        welcome_and_consent(page, False)
        answer_to_the_end(page, False)
        press(next_button(page), False)
        page.locator("#download").wait_for()
        assert "could not be stored here (501)" in page.inner_text("#status")
        with page.expect_download() as download:
            page.click("#download")
        saved = tmp_path / "response.json"
        download.value.save_as(saved)
        assert validate(json.loads(saved.read_text()), manifest)["participant_id"] == "static-1"
        context.close()
    finally:
        static.shutdown()
        static.server_close()


def test_screenshots_are_kept(artifacts):
    """Runs last in this module: the artifacts of every page type at both widths exist."""
    names = {p.stem for p in artifacts.glob("*.png")}
    for width in WIDTHS:
        for page_type in ("entry", "welcome", "consent", "free_label", "likert_word", "likert_references",
                          "two_afc", "demographics", "zoom", "complete", "declined"):
            assert f"{width}-{page_type}" in names
    if not os.environ.get("VITALSTUDY_SCREENSHOT_DIR"):
        print(f"browser screenshots: {artifacts}")
