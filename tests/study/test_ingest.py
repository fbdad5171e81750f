"""Ingestion of the three input formats: tidy output, pseudonyms, accounting, and the unit rules."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from responses_fixtures import build_study, google_rows, good_answers, submission

from vitalstudy.cli import main
from vitalstudy.study.answers import AnswerError, parse_likert, parse_text, parse_timestamp
from vitalstudy.study.ingest import ingest, pseudonym
from vitalstudy.study.safetext import neutralise, unneutralise


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_google_csv(path: Path, manifest: dict, people, **kwargs) -> None:
    headers, rows = google_rows(manifest, people, **kwargs)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([headers, *rows])


@pytest.fixture()
def study(tmp_path, monkeypatch):
    monkeypatch.setenv("VITALSTUDY_PARTICIPANT_SALT", "test-salt")
    paths = build_study(tmp_path / "forms")
    paths["manifest_data"] = json.loads(paths["manifest"].read_text())
    (tmp_path / "responses").mkdir()
    return paths


def run_ingest(study, tmp_path, simulated=()):
    return ingest([tmp_path / "responses"], list(simulated), study["manifest"], study["codebook"],
                  study["answer_key"], tmp_path / "out")


def test_all_three_formats_give_tidy_rows_with_methods_and_pseudonyms(study, tmp_path):
    responses = tmp_path / "responses"
    (responses / "s1.json").write_text(json.dumps(submission("alice")))
    write_google_csv(responses / "google.csv", study["manifest_data"], [("bob", "2", good_answers("2"))])
    db = sqlite3.connect(responses / "server.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")  # the newest rows stay in the -wal file, as on a live server
    db.execute("CREATE TABLE submissions(submission_id TEXT PRIMARY KEY, participant_id TEXT UNIQUE, study_id TEXT,"
               " manifest_version TEXT, subset TEXT, received_at TEXT, payload TEXT)")
    payload = submission("carol", "2")
    db.execute("INSERT INTO submissions VALUES (?,?,?,?,?,?,?)", (payload["submission_id"], "carol", "demo",
               payload["manifest_version"], "2", "2026-03-02T09:00:00Z", json.dumps(payload)))
    db.commit()
    before = {p.name: p.read_bytes() for p in responses.iterdir()}
    report = run_ingest(study, tmp_path)
    assert {p.name: p.read_bytes() for p in responses.iterdir()} == before  # the server's files included
    db.close()

    assert report["rows"] == {"read": 3, "accepted": 3, "quarantined": 0, "excluded": 0,
                              "quarantined_by_reason": {}, "excluded_by_reason": {}}
    assert report["balanced"]
    rows = read_csv(tmp_path / "out" / "responses.csv")
    assert len(rows) == 3 * 10
    assert {r["participant"] for r in rows} == {pseudonym(n, b"test-salt") for n in ("alice", "bob", "carol")}
    free = {r["participant"]: r for r in rows if r["type"] == "free_label"}
    assert free[pseudonym("bob", b"test-salt")]["method"] == "maco"  # subset 2's FV of the question
    assert free[pseudonym("alice", b"test-salt")]["method"] == "vital"
    likert = next(r for r in rows if r["question_id"] == "likert_word.q02.b")
    assert (likert["target"], likert["method"], likert["value"]) == ("n02123045", "maco", "3")
    everything = "".join(p.read_text() for p in (tmp_path / "out").glob("*.*") if p.suffix in (".csv", ".json"))
    for secret in ("alice", "bob@example.org", "test-salt"):
        assert secret not in everything
    provenance = json.loads((tmp_path / "out" / "_provenance" / "ingest.json").read_text())
    for name, data in before.items():
        if not name.endswith("-shm"):  # SQLite's shared-memory index is not read
            assert provenance["inputs"][str(responses / name)] == hashlib.sha256(data).hexdigest()
    outputs = ("responses.csv", "quarantine.csv", "exclusions.csv", "validation_report.json")
    assert set(provenance["outputs"]) == {str(tmp_path / "out" / n) for n in outputs}


def test_duplicates_keep_the_earliest_valid_submission(study, tmp_path):
    responses = tmp_path / "responses"
    first = submission("dora")
    (responses / "a.json").write_text(json.dumps(first))
    (responses / "export.json").write_text(json.dumps([first | {"received_at": "x"},  # the same submission again
                                                       submission("dora", submission_id="retry",
                                                                  submitted_at="2026-03-05T10:00:00Z",
                                                                  answers=good_answers(ratings=(1, 2, 3, 4)))]))
    incomplete = submission("erik", submission_id="e1", started_at="2026-03-01T08:50:00Z",
                            submitted_at="2026-03-01T09:00:00Z")
    del incomplete["answers"]["free_label.q01@1"]
    (responses / "b.json").write_text(json.dumps([incomplete, submission("erik", submission_id="e2")]))
    report = run_ingest(study, tmp_path)
    assert report["rows"]["quarantined_by_reason"] == {"duplicate_participant": 1, "duplicate_submission": 1,
                                                      "incomplete": 1}
    assert report["rows"]["accepted"] == 2 and report["balanced"]
    kept = {Path(r["source_file"]).name + ":" + r["source_row"] for r in read_csv(tmp_path / "out" / "responses.csv")}
    assert kept == {"a.json:1", "b.json:2"}


def test_exclusions_follow_the_manifest_rules(study, tmp_path):
    responses = tmp_path / "responses"
    failed_catch = submission("f1")
    failed_catch["answers"]["two_afc.q02"] = {"choice": "B", "confidence": 3}
    too_fast = submission("f2", started_at="2026-03-01T10:12:00Z")
    straight = submission("f3")
    straight["answers"].update({k: 3 for k in straight["answers"] if k.startswith("likert_word")})
    for n, payload in enumerate((failed_catch, too_fast, straight, submission("ok"))):
        (responses / f"{n}.json").write_text(json.dumps(payload))
    report = run_ingest(study, tmp_path)
    assert report["rows"]["excluded_by_reason"] == {"completion_time": 1, "failed_catch_trials": 1, "straightlining": 1}
    assert report["rows"]["accepted"] == 1
    exclusions = read_csv(tmp_path / "out" / "exclusions.csv")
    assert {e["reason"] for e in exclusions} == {"completion_time", "failed_catch_trials", "straightlining"}
    assert {r["participant"] for r in read_csv(tmp_path / "out" / "responses.csv")} == {pseudonym("ok", b"test-salt")}


def test_straightlining_on_2afc_counts_choices_not_confidence(study, tmp_path):
    manifest = study["manifest_data"] | {"exclusions": {"straightlining": {"sections": ["two_afc"],
                                                                          "max_identical_fraction": 1.0}}}
    study["manifest"].write_text(json.dumps(manifest))
    always_a = submission("always-a")  # choices A, A; confidences 3, 2
    mixed = submission("mixed")
    mixed["answers"]["two_afc.q01"] = {"choice": "B", "confidence": 3}
    same_confidence = submission("same-confidence")
    same_confidence["answers"]["two_afc.q01"] = {"choice": "B", "confidence": 2}
    for n, payload in enumerate((always_a, mixed, same_confidence)):
        (tmp_path / "responses" / f"{n}.json").write_text(json.dumps(payload))
    report = run_ingest(study, tmp_path)
    assert report["rows"]["excluded_by_reason"] == {"straightlining": 1}
    assert read_csv(tmp_path / "out" / "exclusions.csv")[0]["participant"] == pseudonym("always-a", b"test-salt")


def test_wrong_forms_files_stop_with_one_line_naming_the_file(study, tmp_path, capsys):
    args = ["responses", "ingest", "--manifest", str(study["manifest"]), "--codebook", str(study["codebook"]),
            "--answer-key", str(study["answer_key"]), "--out", str(tmp_path / "out")]
    swapped = args.copy()
    swapped[3], swapped[7] = swapped[7], swapped[3]  # answer key given as the manifest and back
    assert main(swapped) == 1
    assert f"{study['answer_key']}: not a vitalstudy.manifest/1 file" in capsys.readouterr().err
    missing = [a if a != str(study["codebook"]) else str(tmp_path / "none.csv") for a in args]
    assert main(missing) == 1
    assert "none.csv: cannot read the codebook" in capsys.readouterr().err


def test_salt_file_is_created_once_and_never_printed(study, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("VITALSTUDY_PARTICIPANT_SALT")
    (tmp_path / "responses" / "a.json").write_text(json.dumps(submission("alice")))
    args = ["responses", "ingest", "--manifest", str(study["manifest"]), "--codebook", str(study["codebook"]),
            "--answer-key", str(study["answer_key"]), "--inputs", str(tmp_path / "responses"),
            "--out", str(tmp_path / "out")]
    assert main(args) == 0
    salt = (tmp_path / "out" / ".participant_salt").read_text().strip()
    first = read_csv(tmp_path / "out" / "responses.csv")[0]["participant"]
    assert main(args) == 0
    assert read_csv(tmp_path / "out" / "responses.csv")[0]["participant"] == first == pseudonym("alice", salt.encode())
    assert (tmp_path / "out" / ".participant_salt").stat().st_mode & 0o077 == 0
    assert salt not in capsys.readouterr().out


@pytest.mark.parametrize("text, expected", [
    ("2026-03-01T10:12:34Z", "2026-03-01T10:12:34+00:00"),
    ("2026-03-01T11:12:34+01:00", "2026-03-01T10:12:34+00:00"),
    ("2026/03/01 10:12:34 PM GMT+1", "2026-03-01T21:12:34+00:00"),
    ("2026/03/01 12:05:00 AM GMT-5:30", "2026-03-01T05:35:00+00:00"),
    ("3/1/2026 10:12:34", "2026-03-01T10:12:34+00:00"),
    ("01.03.2026 10:12:34", "2026-03-01T10:12:34+00:00"),
])
def test_timestamps_of_every_export_locale(text, expected):
    assert parse_timestamp(text).isoformat() == expected


def test_day_first_slash_dates_are_read_as_the_file_says(study, tmp_path):
    people = [("gb1", "1", good_answers("1")), ("gb2", "2", good_answers("2"))]
    headers, rows = google_rows(study["manifest_data"], people)
    rows[0][0], rows[1][0] = "25/03/2026 10:00:00", "04/03/2026 10:00:00"  # en-GB export: 4 March, not 3 April
    with open(tmp_path / "responses" / "gb.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([headers, *rows])
    report = run_ingest(study, tmp_path)
    assert report["rows"]["accepted"] == 2
    assert any("day first" in note for note in report["files"][0]["notes"])


LIKERT = {"min": 1, "max": 5, "labels": {"1": "worst", "5": "best"}}


@pytest.mark.parametrize("value, expected", [(4, 4), ("4", 4), (" 5 ", 5), ("5 - best", 5), ("5: Best", 5),
                                             ("5 (best)", 5), ("1 – worst", 1), ("best", 5)])
def test_likert_accepts_integers_and_their_own_labels(value, expected):
    assert parse_likert(value, LIKERT) == expected


@pytest.mark.parametrize("value, reason", [("4 - best", "likert_label_mismatch"), ("3 - ok", "likert_label_mismatch"),
                                           ("4.5", "likert_not_integer"), (4.0, "likert_not_integer"),
                                           ("four", "likert_not_integer"), (True, "likert_not_integer"),
                                           ("6", "likert_out_of_range"), ("0", "likert_out_of_range"),
                                           ("-2", "likert_out_of_range")])
def test_likert_rejections_name_their_reason(value, reason):
    with pytest.raises(AnswerError) as caught:
        parse_likert(value, LIKERT)
    assert caught.value.reason == reason


def test_free_text_is_normalised_and_personal_data_masked():
    assert parse_text("  a cup\n of  espresso ", {"max_length": 200}) == "a cup of espresso"
    assert parse_text("me@example.org at 10.0.0.1", {}) == "[email] at [ip]"
    for bad, reason in (("  ...  ", "empty_free_text"), ("x" * 201, "text_too_long")):
        with pytest.raises(AnswerError) as caught:
            parse_text(bad, {"max_length": 200})
        assert caught.value.reason == reason


@pytest.mark.parametrize("value", ["=cmd()", "+1", "-2+3", "@SUM(A1)", "\t=1", "'quoted", "plain", "", "''"])
def test_neutralising_formulas_is_reversible(value):
    safe = neutralise(value)
    assert safe[:1] not in ("=", "+", "-", "@", "\t")
    assert unneutralise(safe) == value
