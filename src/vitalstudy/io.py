"""Small file helpers every stage uses: atomic writes (a killed job never leaves a half file that
looks finished) and content hashes."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | os.PathLike, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text(encoding="utf-8"))


class StagedOutputs:
    """Several output files that replace their previous versions together or not at all.

    Files are written under ``<folder>/.staging/`` (``path(target)`` names where to write one); on
    success a journal is written and renamed to ``COMMIT`` (the atomic step), then every file is
    moved into place. A run that fails before the commit leaves the old outputs exactly as they
    were; one killed during the moves is finished by ``recover`` (run on entry), so a folder never
    mixes two runs' outputs.
    """

    JOURNAL = "COMMIT"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.staging = self.folder / ".staging"
        self.targets: dict[str, Path] = {}

    def __enter__(self) -> "StagedOutputs":
        self.recover()
        self.staging.mkdir(parents=True)
        return self

    def path(self, target: str | os.PathLike) -> Path:
        staged = self.staging / f"{len(self.targets)}-{Path(target).name}"
        self.targets[staged.name] = Path(target)
        return staged

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return False
        for name in self.targets:
            with open(self.staging / name, "rb") as fh:
                os.fsync(fh.fileno())
        journal = self.staging / f"{self.JOURNAL}.partial"
        journal.write_text(json.dumps({name: str(t) for name, t in self.targets.items()}))
        os.replace(journal, self.staging / self.JOURNAL)
        self.recover()
        return False

    def recover(self) -> None:
        """Finish a committed set (move its files into place) or discard an uncommitted one."""
        journal = self.staging / self.JOURNAL
        if journal.exists():
            for name, target in json.loads(journal.read_text()).items():
                staged = self.staging / name
                if staged.exists():
                    Path(target).parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(staged, target)  # a rename on the same file system
        shutil.rmtree(self.staging, ignore_errors=True)


def persistent_secret(env: str, path: str | os.PathLike) -> bytes:
    """A secret from the environment variable `env`, else a random one kept in `path` (created once,
    owner-only from the start, and complete before it appears: two processes racing to create it
    end up with the same secret) so that later runs reuse it."""
    if os.environ.get(env):
        return os.environ[env].encode("utf-8")
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0o600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)  # atomic, and never replaces a secret another process created first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    secret = path.read_text().strip().encode("utf-8")
    if not secret:
        raise OSError(f"{path}: the secret file is empty; restore it from the study's archive")
    return secret


def save_png(path: str | os.PathLike, image) -> None:
    """Save a PIL image as PNG with no text chunks, so equal pixels give equal bytes."""
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=False)


@contextmanager
def file_lock(path: str | os.PathLike):
    """Hold an exclusive advisory lock on `path` (created if needed) for the block: jobs of one run
    that share a record (the run's batch sizes, GPU slots) take turns instead of racing."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
