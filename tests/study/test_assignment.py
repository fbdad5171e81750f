"""Server-side balanced assignment: least-filled subset, keyed ties, stable per participant, and 30
simulated participants through the real server landing in balanced subsets."""

import json
import sqlite3
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import numpy as np
import pytest
from forms_fixtures import build

from vitalstudy.study.assignment import (
    HOLD_SECONDS,
    Assigner,
    hold_seconds,
    least_filled,
    static_subset,
    tie_order,
)
from vitalstudy.study.server import SCHEMA, make_server
from vitalstudy.study.simulate import Rater, answer_question

SUBSETS = ["1", "2", "3"]


@pytest.fixture
def assigner(tmp_path):
    db = tmp_path / "db.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(SCHEMA)
    clock = {"now": 1000.0}
    a = Assigner(db, SUBSETS, b"k" * 32, hold_seconds=60, clock=lambda: clock["now"])
    yield a, clock, db
    a.close()


def submit(db, pid, subset):
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO submissions VALUES (?, ?, 's', 'v', ?, 't', '{}')", (str(uuid.uuid4()), pid, subset))


def test_least_filled_with_keyed_ties():
    assert least_filled({"1": 2, "2": 1, "3": 1}, ["3", "2", "1"]) == "3"
    assert least_filled({"1": 0, "2": 1, "3": 1}, ["3", "2", "1"]) == "1"
    orders = {tuple(tie_order(b"key-a", f"p{i}", SUBSETS)) for i in range(40)}
    assert len(orders) > 3  # ties go different ways for different ids
    assert tie_order(b"key-a", "p1", SUBSETS) == tie_order(b"key-a", " P1 ", SUBSETS)
    assert [tie_order(b"key-a", f"p{i}", SUBSETS) for i in range(20)] != [tie_order(b"key-b", f"p{i}", SUBSETS)
                                                                           for i in range(20)]


def test_assignments_fill_subsets_evenly_and_are_stable(assigner):
    a, _, db = assigner
    first = [a.assign(f"p{i}") for i in range(7)]
    assert sorted(Counter(first).values()) == [2, 2, 3]
    assert [a.assign(f"p{i}") for i in range(7)] == first  # a reload gets the same subset
    assert a.assign("P3 ") == first[3]  # ids compared as ingestion compares them
    with sqlite3.connect(db) as conn:
        keys = [k for (k,) in conn.execute("SELECT participant_key FROM assignments")]
    assert len(keys) == 7 and all(len(k) == 64 for k in keys)  # keyed hashes, not the ids
    assert set(keys).isdisjoint({f"p{i}" for i in range(7)})


def test_abandoned_participants_free_their_place_and_submissions_count(assigner):
    a, clock, db = assigner
    s0 = a.assign("a")
    a.assign("b")
    submit(db, "a", s0)
    clock["now"] += 120  # "b" gave up: past the hold time, no submission
    assert a.fill() == {s: int(s == s0) for s in SUBSETS}
    third = a.assign("c")
    assert third != s0
    submit(db, "walk-in", "3")  # a submission without an assignment still fills its subset
    assert a.fill()["3"] >= 1
    a.release("a")  # declining after submitting forgets nothing
    a.release("c")
    assert a.assigned("a") == s0 and a.assigned("c") is None


def test_concurrent_starts_stay_balanced(assigner):
    a, _, _ = assigner
    with ThreadPoolExecutor(8) as pool:
        subsets = list(pool.map(a.assign, [f"c{i}" for i in range(30)]))
    assert sorted(Counter(subsets).values()) == [10, 10, 10]


def test_hold_time_is_the_longest_accepted_completion_time():
    assert hold_seconds({"exclusions": {"completion_seconds": {"min": 10, "max": 3600}}}) == 3600
    assert hold_seconds({"exclusions": {"completion_seconds": None}}) == HOLD_SECONDS


def test_static_rule_spreads_ids():
    counts = Counter(static_subset("salt", f"id-{i}", SUBSETS) for i in range(3000))
    assert set(counts) == set(SUBSETS) and max(counts.values()) - min(counts.values()) < 150


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("assign")
    _, study_dir, manifest = build(root)
    answer_key = json.loads((study_dir / "private" / "answer_key.json").read_text())
    srv = make_server(study_dir / "forms", root / "db.sqlite", port=0)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", manifest, answer_key, root / "db.sqlite"
    srv.shutdown()
    srv.server_close()


def post(url, body):
    request = Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except HTTPError as e:
        return e.code, json.loads(e.read())


def simulated_payload(manifest, answer_key, pid, subset, rng):
    """A participant of the simulator's rater model answering their subset's questions."""
    rater = Rater("attentive", rng)
    answers = {}
    for q in manifest["questions"]:
        if q["subset"] not in (None, subset):
            continue
        judgement = None if q.get("catch") else type("J", (), {"p_true": 0.6, "top1_label": "espresso",
                                                                "alternatives": ()})()
        fields = answer_question(rater, q, judgement, answer_key["questions"].get(q["question_id"], {}))
        value = fields if q["type"] == "two_afc" else next(iter(fields.values()))
        if value != "":
            answers[q["question_id"]] = value
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"format": "vitalstudy.response/1", "submission_id": str(uuid.uuid4()), "study_id": manifest["study_id"],
            "manifest_version": manifest["manifest_version"], "subset": subset, "participant_id": pid,
            "prolific": None, "started_at": now, "submitted_at": now, "answers": answers}


def test_thirty_simulated_participants_through_the_server_land_balanced(served):
    base, manifest, answer_key, db = served
    rng = np.random.default_rng(0)
    subsets = {}
    for i in range(30):  # each arrives, is assigned, reloads (same subset), and submits
        pid = f"sim-{i:04d}"
        status, body = post(f"{base}/api/assign", {"participant_id": pid})
        assert status == 200 and body["page"] == f"subset-{body['subset']}.html"
        assert post(f"{base}/api/assign", {"participant_id": pid})[1]["subset"] == body["subset"]
        subsets[pid] = body["subset"]
        status, stored = post(f"{base}/api/submit", simulated_payload(manifest, answer_key, pid, body["subset"], rng))
        assert status == 200 and stored["status"] == "stored", stored
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT participant_id, subset FROM submissions").fetchall())
    assert rows == subsets
    counts = Counter(rows.values())
    assert set(counts) == set(manifest["subsets"]) and max(counts.values()) - min(counts.values()) <= 1, counts


def test_the_server_refuses_a_subset_other_than_the_assigned_one(served):
    base, manifest, answer_key, _ = served
    subset = post(f"{base}/api/assign", {"participant_id": "switcher"})[1]["subset"]
    other = next(s for s in manifest["subsets"] if s != subset)
    status, body = post(f"{base}/api/submit",
                        simulated_payload(manifest, answer_key, "switcher", other, np.random.default_rng(1)))
    assert status == 409 and f"assigned part {subset}" in body["error"]
    for bad in ({"participant_id": "has space"}, {"participant_id": 7}, [], {"x": 1}):
        assert post(f"{base}/api/assign", bad)[0] == 400
