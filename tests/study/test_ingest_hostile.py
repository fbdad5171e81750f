"""A hostile corpus: every bad row lands in quarantine with its reason, nothing crashes, the report
adds up, the raw files stay untouched and no output cell can run as a spreadsheet formula."""

from __future__ import annotations

import csv
import hashlib
import io
import json

from responses_fixtures import build_study, google_rows, good_answers, submission

from vitalstudy.study.exports import RAW_PREVIEW_CHARS
from vitalstudy.study.ingest import ingest


def csv_line(cells) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)  # CRLF, as Google's download
    return buffer.getvalue()


def google_corpus(manifest):
    """(text of a Google Forms export with a BOM, expected row reasons, expected answer reasons)."""
    people = [(f"p{n:02d}", "1" if n % 2 else "2", good_answers("1" if n % 2 else "2")) for n in range(1, 21)]
    headers, rows = google_rows(manifest, people, timestamp="2026/03/01 10:00:00 AM GMT+0")
    headers = headers + ["Comments [free_label.q99]"]
    rows = [row + [""] for row in rows]
    col = {h[h.rindex("[") + 1:-1] if "[" in h else h: i for i, h in enumerate(headers)}

    def free(row):
        return col["free_label.q01@1"] if row[col["subset"]] == "1" else col["free_label.q01@2"]

    lines = {2: csv_line(rows[0])}
    lines[3] = csv_line(rows[1]).replace(",p02,", ',"p0"2,')  # a stray quote inside an unquoted cell
    lines[4] = csv_line(rows[2][:5])  # truncated row
    lines[5] = csv_line(rows[3] + ["extra", "cells"])
    rows[4][free(rows[4])], rows[4][-1] = "=cmd()", "@SUM(A1)"  # formula injection, in a known and an unknown column
    rows[5][free(rows[5])] = "x" * 50_000  # a huge cell
    rows[6][col["likert_word.q01.a"]] = "7"
    rows[7][col["likert_word.q01.a"]], rows[7][col["likert_word.q01.b"]] = "5 - best", "4 - best"
    rows[8][free(rows[8])] = "  -  "
    rows[9][col["participant_id"]] = ""
    rows[10][col["subset"]] = "9"
    rows[11][0] = "2025/06/01 10:00:00 AM GMT+0"  # before the study window
    rows[12][0] = "yesterday"
    rows[13] = list(rows[0])  # the same row twice
    rows[14] = list(rows[0])
    rows[14][0], rows[14][col["likert_word.q02.a"]] = "2026/03/02 10:00:00 AM GMT+0", "1"  # p01 again, later
    rows[15][free(rows[15])] = ""  # a required answer missing
    rows[16][col["two_afc.q01"]] = "A;B"  # a checkbox cell in a single-choice item
    rows[18][col["two_afc.q02"]] = "B"  # failed catch trial
    for name in ("likert_word.q01.a", "likert_word.q01.b", "likert_word.q02.a", "likert_word.q02.b"):
        rows[19][col[name]] = "3"  # straight-lining
    for n in range(4, 20):
        lines[n + 2] = csv_line(rows[n])
    lines[19] = lines[19].replace("p18", "p18\udcff")  # a byte that is not UTF-8
    text = csv_line(headers) + "".join(lines[n] for n in sorted(lines)) + ",,,\r\n" + '2026/03/01,"unterminated,p99\r\n'
    data = b"\xef\xbb\xbf" + text.encode("utf-8", "surrogateescape")
    row_reasons = {3: "malformed_row", 4: "malformed_row", 5: "malformed_row", 7: "cell_too_large",
                   11: "missing_participant_id", 12: "unknown_subset", 13: "outside_window", 14: "bad_timestamp",
                   15: "identical_row", 16: "duplicate_participant", 17: "incomplete", 19: "encoding_error",
                   23: "malformed_row"}
    answer_reasons = {(6, "free_label.q99"): "unknown_question", (8, "likert_word.q01.a"): "likert_out_of_range",
                      (9, "likert_word.q01.b"): "likert_label_mismatch", (10, "free_label.q01@1"): "empty_free_text",
                      (18, "two_afc.q01"): "multiple_choices"}
    excluded = {20: "failed_catch_trials", 21: "straightlining"}
    return data, row_reasons, answer_reasons, excluded


def test_hostile_corpus_is_fully_accounted_for(tmp_path, monkeypatch):
    monkeypatch.setenv("VITALSTUDY_PARTICIPANT_SALT", "s")
    study = build_study(tmp_path / "forms")
    manifest = json.loads(study["manifest"].read_text())
    raw = tmp_path / "responses"
    raw.mkdir()
    data, row_reasons, answer_reasons, excluded = google_corpus(manifest)
    (raw / "google.csv").write_bytes(data)
    headers, rows = google_rows(manifest, [("q1", "1", good_answers("1", label="café crème")),
                                           ("q2", "2", good_answers("2"))])
    (raw / "latin1.csv").write_bytes("".join(map(csv_line, [headers, rows[0]])).encode("cp1252"))
    (raw / "utf16.csv").write_bytes("".join(map(csv_line, [headers, rows[1]])).encode("utf-16"))
    for name, delimiter, encoding, person in (("semicolon.csv", ";", "utf-8", "q3"),  # Excel, German locale
                                              ("unicode.csv", "\t", "utf-16", "q4")):  # Excel's "Unicode text"
        header, row = google_rows(manifest, [(person, "1", good_answers("1"))])
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter).writerows([header, *row])
        (raw / name).write_bytes(buffer.getvalue().encode(encoding))
    headers, rows = google_rows(manifest, [("r1", "1", good_answers("1")), ("r2", "1", good_answers("1")),
                                           ("r3", "1", good_answers("1"))])
    dup = headers.index(next(h for h in headers if h.endswith("[likert_word.q01.a]")))
    table = [[*row, row[dup]] for row in [headers, *rows]]
    table[3][-1] = "1"  # r3's two copies of the column disagree
    (raw / "reordered.csv").write_text("".join(csv_line(row[::-1]) for row in table))
    huge_then_fine = [headers, ["y" * 200_000], rows[0][:2] + ["h1"] + rows[0][3:]]  # a cell over csv's limit
    (raw / "huge.csv").write_text("".join(map(csv_line, huge_then_fine)))
    (raw / "bad.json").write_text("{not json")
    (raw / "format.json").write_text(json.dumps({"format": "something/else", "answers": {}}))
    (raw / "old.json").write_text(json.dumps(submission("j1", manifest_version="000000000000")))
    (raw / "other.json").write_text(json.dumps(submission("j2", study_id="another-study")))
    extra = submission("j3")
    extra["answers"] |= {"likert_word.q77.a": 3, "free_label.q01@2": "espresso"}
    (raw / "extra.json").write_text(json.dumps(extra))
    (raw / "notes.txt").write_text("interviewer notes")
    (raw / "broken.sqlite").write_bytes(b"not a database" * 100)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}

    report = ingest([raw], [], study["manifest"], study["codebook"], study["answer_key"], tmp_path / "out")

    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()} == before
    quarantine = list(csv.DictReader(open(tmp_path / "out" / "quarantine.csv", encoding="utf-8")))
    assert {int(r["source_row"]): r["reason"] for r in quarantine
            if r["source_file"].endswith("google.csv") and r["level"] == "row"} == row_reasons
    google_answers = [r for r in quarantine if r["source_file"].endswith("google.csv") and r["level"] == "answer"]
    assert {(int(r["source_row"]), r["field"].rsplit("[", 1)[-1].rstrip("]")): r["reason"]
            for r in google_answers} == answer_reasons
    exclusions = list(csv.DictReader(open(tmp_path / "out" / "exclusions.csv", encoding="utf-8")))
    assert {int(e["source_row"]): e["reason"] for e in exclusions
            if e["source_file"].endswith("google.csv")} == excluded
    others = {(r["source_file"].rsplit("/", 1)[-1], r["level"], r["reason"]) for r in quarantine
              if not r["source_file"].endswith("google.csv")}
    assert others == {("huge.csv", "row", "cell_too_large"), ("reordered.csv", "answer", "duplicate_column"),
                      ("reordered.csv", "answer", "conflicting_duplicate_columns"),
                      ("bad.json", "row", "malformed_row"),
                      ("format.json", "row", "malformed_row"), ("old.json", "row", "manifest_version_mismatch"),
                      ("other.json", "row", "study_mismatch"), ("extra.json", "answer", "unknown_question"),
                      ("extra.json", "answer", "wrong_subset"), ("notes.txt", "row", "unsupported_file"),
                      ("broken.sqlite", "row", "unreadable_file")}

    rows = report["rows"]
    google_rows_read = 21  # lines 2-23 less the blank line 22
    assert rows["read"] == google_rows_read + 4 + 3 + 2 + 5 + 2
    assert rows["read"] == rows["accepted"] + rows["quarantined"] + rows["excluded"] and report["balanced"]
    assert rows["quarantined"] == sum(rows["quarantined_by_reason"].values())
    assert rows["quarantined"] == sum(r["level"] == "row" for r in quarantine)
    assert report["answers"]["quarantined"] == sum(r["level"] == "answer" for r in quarantine)
    responses = list(csv.DictReader(open(tmp_path / "out" / "responses.csv", encoding="utf-8")))
    accepted_files = {r["source_file"].rsplit("/", 1)[-1] for r in responses}
    assert {"latin1.csv", "utf16.csv", "semicolon.csv", "unicode.csv", "reordered.csv", "huge.csv",
            "extra.json"} <= accepted_files
    encodings = {f["path"].rsplit("/", 1)[-1]: f["encoding"] for f in report["files"]}
    assert encodings["latin1.csv"].startswith("cp1252") and encodings["utf16.csv"] == "utf-16"

    assert any(r["value"] == "'=cmd()" for r in responses)
    assert any(r["value"] == "café crème" for r in responses)
    for name in ("responses.csv", "quarantine.csv", "exclusions.csv"):
        for row in csv.reader(open(tmp_path / "out" / name, encoding="utf-8")):
            assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), (name, row)
    assert max(len(r["raw"]) for r in quarantine) < RAW_PREVIEW_CHARS + 50
    assert report["formula_cells_neutralised"]["responses.csv"] >= 1
