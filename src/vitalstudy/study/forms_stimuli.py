"""Blinded stimuli: keyed-hash file names and PNGs re-encoded from pixels only.

A participant must not learn a stimulus's method or target from anything but its pixels. Names are
an HMAC of the source under a key kept in ``private/`` (so they cannot be recomputed from the public
spec), and every image is rebuilt from raw pixels, so no text chunk, EXIF or ICC profile of the
source survives.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

from vitalstudy.errors import VitalStudyError
from vitalstudy.io import persistent_secret

KEY_ENV = "VITALSTUDY_BLINDING_KEY"
NATURAL_MAX_SIDE = 256  # reference crops and query photos are shown as thumbnails


def blinding_key(private_dir: Path) -> bytes:
    """The HMAC key: $VITALSTUDY_BLINDING_KEY, else ``private/blinding.key`` (created once, reused).

    Reusing the key keeps stimulus names, and so the manifest version, stable across rebuilds.
    """
    return persistent_secret(KEY_ENV, private_dir / "blinding.key")


@dataclass(frozen=True)
class Source:
    """Where a stimulus comes from, and what the answer key records about it."""

    path: Path
    natural: bool  # natural photo (cropped / thumbnailed) rather than an FV
    name: str  # what identifies the source across machines: run-relative FV path or image id
    crop_box: tuple[int, int, int, int] | None = None
    flip: bool = False
    info: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass
class StimulusBank:
    """Turns sources into blinded, deduplicated stimulus files under ``stimuli/``."""

    key: bytes
    run_dir: Path
    files: dict[str, bytes] = field(default_factory=dict)  # stimulus_id -> PNG bytes
    key_entries: dict[str, dict] = field(default_factory=dict)  # stimulus_id -> answer-key record

    def add(self, source: Source) -> dict:
        """Register a source; returns the manifest record without its role."""
        rel = self._relative(source.path)
        message = json.dumps([source.name, source.crop_box, source.flip]).encode()
        stimulus_id = "s-" + hmac.new(self.key, message, hashlib.sha256).hexdigest()[:12]
        if stimulus_id not in self.files:
            self.files[stimulus_id] = encode_png(source)
            entry = {"source": rel, "crop_box": list(source.crop_box) if source.crop_box else None}
            self.key_entries[stimulus_id] = {**entry, "flip": source.flip, **source.info}
        return {
            "stimulus_id": stimulus_id,
            "file": f"stimuli/{stimulus_id}.png",
            "sha256": hashlib.sha256(self.files[stimulus_id]).hexdigest(),
        }

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.run_dir.resolve()).as_posix()
        except ValueError:
            return str(path)


def encode_png(source: Source) -> bytes:
    """Decode, apply the view, and write a fresh RGB PNG holding pixels and nothing else."""
    try:
        with Image.open(source.path) as im:
            im = ImageOps.exif_transpose(im) if source.natural else im
            rgb = im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise VitalStudyError(f"{source.path}: cannot read image: {exc}") from None
    if source.crop_box:
        rgb = rgb.crop(source.crop_box)
    if source.flip:
        rgb = ImageOps.mirror(rgb)
    if source.natural:
        rgb.thumbnail((NATURAL_MAX_SIDE, NATURAL_MAX_SIDE), Image.Resampling.BICUBIC)
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    out = io.BytesIO()
    clean.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()
