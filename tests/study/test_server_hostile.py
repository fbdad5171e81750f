"""The collection server under attack (loopback only): hostile text, ids that differ only in form,
implausible timestamps, wrong Content-Type or Origin, links out of the bundle, malformed HTTP, and
stored bad text in the exports."""

import csv
import io
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_server import SRC, count, exchange, get, payload, post, qid, running


@pytest.fixture(scope="module")
def forms(bundle, tmp_path_factory):
    """A private copy of the bundle, so tests may plant links in it."""
    study_dir, manifest = bundle
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(study_dir, root / "study")
    return root / "study" / "forms", manifest


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from forms_fixtures import build

    _, study_dir, manifest = build(tmp_path_factory.mktemp("server-hostile"))
    return study_dir, manifest


@pytest.fixture
def server(forms, tmp_path):
    with running(forms[0], tmp_path / "db.sqlite", admin_token="tok", max_bytes=64 * 1024) as (srv, base):
        yield srv, base, tmp_path / "db.sqlite"


def free_label(manifest, subset="2"):
    return qid(manifest, "free_label", 1, subset)


def raw_post(base, body: bytes, headers: dict) -> tuple[int, dict]:
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    req = Request(base + "/api/submit", data=body, headers=headers)
    try:
        with urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.mark.parametrize(("text", "why"), [
    ("cup \ud800 x", "surrogate"), ("cup\x00", "control character U+0000"), ("a\x1bb", "U+001B"),
    ("evil\u202etxt", "bidirectional"), ("\u200b", "no visible character"), ("\u3164\u3164", "no visible character"),
    ("\u200b \u2060\ufeff", "no visible character"), ("\u0301", "no visible character"),
])
def test_hostile_text_refused_naming_the_field(server, forms, text, why):
    _, base, db = server
    manifest = forms[1]
    body = payload(manifest)
    body["answers"][free_label(manifest)] = text
    status, reply = raw_post(base, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert status == 400 and why in reply["error"] and free_label(manifest) in reply["error"], reply
    assert count(db) == 0


def test_lone_surrogate_anywhere_is_refused(server, forms):
    _, base, db = server
    manifest = forms[1]
    for change in ({"participant_id": "p\ud800"}, {"prolific": {"PROLIFIC_PID": "\udfff"}},
                   {"answers": {"\ud800": 1}}, {"started_at": "\ud83d"}):
        status, reply = post(base, {**payload(manifest), **change})
        assert status == 400, (change, reply)
    assert count(db) == 0


def test_ids_are_matched_in_full(server, forms):
    _, base, db = server
    body = payload(forms[1])
    status, _ = post(base, {**body, "submission_id": body["submission_id"] + "\n"})
    assert status == 400
    assert post(base, body)[0] == 200 and count(db) == 1


@pytest.mark.parametrize("variant", ["ALICE", " alice ", "Alice\n", "\uff21lice", "alice\t"])
def test_participant_ids_are_normalised_before_the_one_per_participant_check(server, forms, variant):
    _, base, db = server
    manifest = forms[1]
    assert post(base, payload(manifest, "alice"))[0] == 200
    status, reply = post(base, payload(manifest, variant))
    assert status == 409, reply
    assert count(db) == 1


@pytest.mark.parametrize(("started", "submitted", "field"), [
    ("2026-03-01T10:05:00Z", "2026-03-01T10:00:00Z", "started_at"),  # started after submitted
    ("0001-01-01T00:00:00Z", "2026-03-01T10:00:00Z", "started_at"),
    ("2026-03-01T10:00:00Z", "9999-12-31T23:59:59Z", "submitted_at"),
    ("2026-03-01T10:00:00Z\n", "2026-03-01T10:05:00Z", "started_at"),
    ("2026-03-01", "2026-03-01T10:05:00Z", "started_at"),
])
def test_implausible_timestamps_refused(server, forms, started, submitted, field):
    _, base, db = server
    status, reply = post(base, payload(forms[1], started_at=started, submitted_at=submitted))
    assert status == 400 and reply["error"].startswith(field), reply
    assert count(db) == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/json; charset=latin-1"])
def test_json_content_type_required(server, forms, content_type):
    _, base, db = server
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(payload(forms[1])).encode()
    if content_type is None:  # urllib would add a form Content-Type: send by hand
        conn = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=10)
        conn.sendall(b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        assert conn.recv(100).split(b" ")[1] == b"415"
        conn.close()
    else:
        assert raw_post(base, body, headers)[0] == 415
    assert count(db) == 0
    assert raw_post(base, body, {"Content-Type": "application/json; charset=UTF-8"})[0] == 200


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Referer": "https://evil.example/page.html"},
                                     {"Origin": "http://127.0.0.1:1"}])
def test_cross_origin_submissions_refused(server, forms, headers):
    _, base, db = server
    body = json.dumps(payload(forms[1])).encode()
    status, reply = raw_post(base, body, {"Content-Type": "application/json", **headers})
    assert status == 403 and "origin" in reply["error"], reply
    assert count(db) == 0
    assert raw_post(base, body, {"Content-Type": "application/json", "Origin": base})[0] == 200


def test_dns_rebinding_host_refused(server, forms):
    srv, base, db = server
    port = srv.server_address[1]
    body = json.dumps(payload(forms[1])).encode()
    headers = {"Content-Type": "application/json", "Host": f"evil.example:{port}",
               "Origin": f"http://evil.example:{port}"}
    assert raw_post(base, body, headers)[0] == 400 and count(db) == 0
    status, _ = get_with_host(base, "/", f"evil.example:{port}")
    assert status == 400


def get_with_host(base, path, host):
    from http.client import HTTPConnection

    conn = HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=10)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host)
    conn.endheaders()
    response = conn.getresponse()
    return response.status, response.read()


def test_links_out_of_the_bundle_are_not_followed(server, forms):
    _, base, _ = server
    forms_dir, manifest = forms
    stimuli = forms_dir / "stimuli"
    answer_key = forms_dir.parent / "private" / "answer_key.json"
    (stimuli / "s-aaaaaaaaaaaa.png").symlink_to(answer_key)
    os.link(answer_key, stimuli / "s-bbbbbbbbbbbb.png")
    real = next(stimuli.glob("s-*.png"))
    (stimuli / "s-cccccccccccc.png").symlink_to(real.name)  # even a link to a real stimulus
    (forms_dir / "subset-9.html").symlink_to(answer_key)
    try:
        for name in ("stimuli/s-aaaaaaaaaaaa.png", "stimuli/s-bbbbbbbbbbbb.png", "stimuli/s-cccccccccccc.png",
                     "subset-9.html"):
            status, body = get(f"{base}/{name}")
            assert status == 404 and b"correct_choice" not in body, name
        assert get(f"{base}/stimuli/{real.name}")[0] == 200
    finally:
        for name in ("s-aaaaaaaaaaaa.png", "s-bbbbbbbbbbbb.png", "s-cccccccccccc.png"):
            (stimuli / name).unlink()
        (forms_dir / "subset-9.html").unlink()


def test_a_linked_stimuli_folder_is_not_followed(forms, tmp_path):
    forms_dir, _ = forms
    copy = tmp_path / "forms"
    shutil.copytree(forms_dir, copy, ignore=shutil.ignore_patterns("stimuli"))
    (copy / "stimuli").symlink_to(forms_dir / "stimuli")
    with running(copy, tmp_path / "db.sqlite") as (_, base):
        name = next((forms_dir / "stimuli").iterdir()).name
        assert get(f"{base}/stimuli/{name}")[0] == 404


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET / HTTP/2.0\r\n\r\n",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    b"\r\n",
    b"\x1c\x1f\r\n",  # separators: str.split() drops them, so http.server answered nothing
    b"GET /\r\n",
    b"GET / HTTP/1.1 extra\r\n\r\n",
    b"GET / HTTX/1.1\r\n\r\n",
    b"FOO / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /\xff\xfe\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"b" * 70_000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n",
    b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n",
    b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1e3\r\n\r\n",
    b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"Content-Length: 40\r\n\r\n{}",
    b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{}",
    b"POST /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n\xff\xfe\xfd\xfc",
    b"GET /admin/export.csv?token=%ff%00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /%00%2e%2e/private/answer_key.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"DELETE /api/submit HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
]


def test_every_malformed_request_gets_a_4xx_and_one_log_line(forms, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "vitalstudy.cli", "serve", "--forms", str(forms[0]), "--db",
                             str(tmp_path / "db.sqlite"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        first = proc.stdout.readline().decode()
        port = int(first.split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        for request in MALFORMED:
            reply = exchange(port, request)
            status = reply.split(b"\r\n", 1)[0]
            assert status.startswith((b"HTTP/1.0 4", b"HTTP/1.1 4")), (request[:60], reply[:200])
        assert exchange(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").startswith(b"HTTP/1.0 200")
    finally:
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)  # every line is flushed as it is logged
        out = proc.communicate(timeout=60)[0].decode("utf-8", "replace")
    lines = out.splitlines()  # (the "serving" line was read above)
    assert "Traceback" not in out, out[-3000:]
    assert len(lines) == len(MALFORMED) + 1, "\n".join(lines)
    assert all(len(line) < 400 for line in lines)


def test_slow_clients_are_cut_and_others_still_served(server, forms):
    srv, base, _ = server
    srv.connection_deadline = 1.0
    port = srv.server_address[1]
    slow = socket.create_connection(("127.0.0.1", port), timeout=10)
    slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
    assert get(base + "/")[0] == 200
    time.sleep(2.5)
    try:
        assert slow.recv(10) == b""  # closed by the server
    except ConnectionResetError:
        pass
    slow.close()


def test_backlog_takes_a_burst_of_connections(server):
    srv, base, _ = server
    assert srv.request_queue_size >= 128
    port = srv.server_address[1]
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(100)]
    for c in conns:
        c.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert all(c.recv(12).startswith(b"HTTP/1.0 200") for c in conns)
    for c in conns:
        c.close()


FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd", "-2+3+cmd",
            "\tvalue", "'quoted"]


def test_csv_export_neutralises_formulas_and_survives_stored_bad_text(server, forms):
    _, base, db = server
    manifest = forms[1]
    for i, text in enumerate(FORMULAS):
        body = payload(manifest, f"f{i}")
        body["answers"][free_label(manifest)] = text
        assert post(base, body)[0] == 200, text
    # a row stored by an older server, before text was checked: lone surrogate, NUL, odd payload
    bad = payload(manifest, "legacy")
    bad["answers"][free_label(manifest)] = "cup \ud800 x\x00"
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (bad["submission_id"], "legacy", bad["study_id"], bad["manifest_version"], "2",
                      "2026-03-01T10:00:00.000000Z", json.dumps(bad)))
        conn.execute("INSERT INTO submissions VALUES ('x', 'y', 's', 'v', '2', '2026-03-01T10:00:01Z', '[1]')")
    status, data = get(base + "/admin/export.csv?token=tok")
    assert status == 200
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    column = rows[0].index(next(h for h in rows[0] if h.endswith(f"[{free_label(manifest)}]")))
    cells = [r[column] for r in rows[1:] if r[0].startswith("f")]
    assert cells == ["'" + t for t in FORMULAS]
    assert any(r[column] == "cup \ufffd x\ufffd" for r in rows[1:])
    status, data = get(base + "/admin/export.json?token=tok")
    assert status == 200 and len(json.loads(data)) == len(FORMULAS) + 2


def test_forms_symlinked_as_a_whole_still_served(forms, tmp_path):
    """The bundle folder itself may be reached through a link (only links inside it are refused)."""
    link = tmp_path / "linked-forms"
    link.symlink_to(forms[0])
    with running(link, tmp_path / "db.sqlite") as (_, base):
        assert get(base + "/")[0] == 200
        name = next((Path(forms[0]) / "stimuli").iterdir()).name
        assert get(f"{base}/stimuli/{name}")[0] == 200


def test_a_stalled_request_is_answered_408(server, monkeypatch):
    srv, base, _ = server
    from vitalstudy.study import server as server_module

    monkeypatch.setattr(server_module.Handler, "timeout", 0.5)
    with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing
        assert conn.recv(100).startswith(b"HTTP/1.0 408")
