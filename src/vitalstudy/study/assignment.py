"""Balanced assignment of participants to subsets, decided by the collection server.

Participants never choose a subset: a latin-square study is only counterbalanced when every subset
gets about as many people. The server gives each new participant id the *least-filled* subset, where
a subset's fill is its stored submissions plus the participants still working on it (assigned less
than ``hold_seconds`` ago, the spec's longest accepted completion time, and not yet submitted;
someone who gave up frees the place after that).
Ties are broken by an HMAC of the participant id under the study's secret key (``private/``), so
neither the public spec nor the code predicts which subset a given id gets. The same id always gets
the same subset back (stable on reload; ids compared normalised, as the server stores them). The
assignments table holds a keyed hash of each id, never the id: someone who leaves before consenting,
or declines, leaves no id behind.

Without a server (a static form opened from disk or a static host) there is no shared count: the
entry page assigns by a keyed hash of the participant id alone (``static_subset``), balanced only
in expectation. The Google Form gets least-filled assignment from its own Apps Script web app.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from vitalstudy.study.forms_stimuli import blinding_key
from vitalstudy.study.safetext import normalise_participant_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS assignments (
  participant_key TEXT PRIMARY KEY, subset TEXT NOT NULL, assigned_at REAL NOT NULL, touched_at REAL NOT NULL
)"""
HOLD_SECONDS = 2 * 3600  # a participant who has not submitted within this time no longer fills a subset


def hold_seconds(manifest: dict) -> float:
    """How long an unfinished participant holds a place: the spec's longest accepted completion time
    (exclusions.completion_seconds.max: anyone slower is excluded anyway), else HOLD_SECONDS."""
    bounds = (manifest.get("exclusions") or {}).get("completion_seconds") or {}
    return float(bounds.get("max") or HOLD_SECONDS)


def participant_key(participant_id: str) -> str:
    """Ids are compared as the server stores them (NFKC, trimmed, case-folded)."""
    return normalise_participant_id(participant_id)


def study_key(private_dir: Path) -> bytes:
    """The assignment key, derived from the study's secret (so one secret file serves the study)."""
    return hmac.new(blinding_key(private_dir), b"vitalstudy.assignment", hashlib.sha256).digest()


def static_salt(private_dir: Path) -> str:
    """What a static entry page hashes participant ids with: derived from the study key, so it reveals
    neither the key nor the stimulus names, only what each id is assigned (which its holder sees anyway)."""
    return hmac.new(study_key(private_dir), b"static", hashlib.sha256).hexdigest()[:32]


def tie_order(key: bytes, participant_id: str, subsets: Sequence[str]) -> list[str]:
    """Subsets in the keyed order this participant takes them when their fill is equal."""
    pid = participant_key(participant_id)
    return sorted(subsets, key=lambda s: hmac.new(key, f"{pid}\x00{s}".encode(), hashlib.sha256).digest())


def least_filled(fill: dict[str, int], order: Sequence[str]) -> str:
    """The first subset of `order` among those with the lowest fill."""
    low = min(fill[s] for s in order)
    return next(s for s in order if fill[s] == low)


def static_subset(salt: str, participant_id: str, subsets: Sequence[str]) -> str:
    """The static page's rule (mirrored in ``static/assign.js``): FNV-1a of salt + id, modulo."""
    h = 0x811C9DC5
    for byte in (salt + participant_key(participant_id)).encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return subsets[h % len(subsets)]


class Assigner:
    """Least-filled assignment over the server's SQLite database: its own connection, used by one
    thread at a time, and the choice and the insert in one ``BEGIN IMMEDIATE`` transaction, so
    concurrent starts (threads or processes) cannot both take the last free place."""

    def __init__(self, db: Path, subsets: Sequence[str], key: bytes, hold_seconds: float = HOLD_SECONDS,
                 clock: Callable[[], float] = time.time):
        self.subsets, self.key, self.hold, self.clock = list(subsets), key, hold_seconds, clock
        self.conn = sqlite3.connect(db, check_same_thread=False, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(SCHEMA)
        self.lock = threading.Lock()

    def hashed(self, participant_id: str) -> str:
        """What the assignments table stores for an id: HMAC of the normalised id under the study key."""
        return hmac.new(self.key, b"participant\x00" + participant_key(participant_id).encode(), hashlib.sha256).hexdigest()

    def fill(self) -> dict[str, int]:
        """Submissions per subset plus participants assigned within the hold time who have not submitted."""
        with self.lock:
            return self._fill(self.clock())

    def _fill(self, now: float) -> dict[str, int]:
        fill = dict.fromkeys(self.subsets, 0)
        submitted = {self.hashed(p): s for p, s in self.conn.execute("SELECT participant_id, subset FROM submissions")}
        for subset in submitted.values():
            if subset in fill:
                fill[subset] += 1
        for pkey, subset, touched in self.conn.execute("SELECT participant_key, subset, touched_at FROM assignments"):
            if pkey not in submitted and now - touched < self.hold and subset in fill:
                fill[subset] += 1
        return fill

    def assigned(self, participant_id: str) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT subset FROM assignments WHERE participant_key = ?",
                                    (self.hashed(participant_id),)).fetchone()
        return row[0] if row else None

    def assign(self, participant_id: str) -> str:
        """This participant's subset: the one given before, else the least-filled one now."""
        with self.lock:
            return self._assign(participant_key(participant_id), self.clock())

    def _assign(self, pid: str, now: float) -> str:
        pkey = self.hashed(pid)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            row = self.conn.execute("SELECT subset FROM assignments WHERE participant_key = ?", (pkey,)).fetchone()
            if row:
                self.conn.execute("UPDATE assignments SET touched_at = ? WHERE participant_key = ?", (now, pkey))
                subset = row[0]
            else:
                stored = self.conn.execute("SELECT subset FROM submissions WHERE participant_id = ?",
                                           (pid,)).fetchone()
                subset = stored[0] if stored else least_filled(self._fill(now), tie_order(self.key, pid, self.subsets))
                self.conn.execute("INSERT INTO assignments VALUES (?, ?, ?, ?)", (pkey, subset, now, now))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return subset

    def release(self, participant_id: str) -> None:
        """Forget a participant who declined consent (nothing about them is kept); a stored
        submission keeps its assignment."""
        pkey = self.hashed(participant_id)
        with self.lock:
            submitted = {self.hashed(p) for (p,) in self.conn.execute("SELECT participant_id FROM submissions")}
            if pkey not in submitted:
                self.conn.execute("DELETE FROM assignments WHERE participant_key = ?", (pkey,))

    def close(self) -> None:
        with self.lock:
            self.conn.close()
