"""Blinded stimuli: keyed-hash file names, one size for every stimulus, pixels and nothing else.

A participant must not learn a stimulus's method or target from anything but its pixels. Names are
an HMAC of the source under a key kept in ``private/`` (so they cannot be recomputed from the public
spec); every image is rebuilt from raw pixels (no text chunk, EXIF or ICC profile of the source
survives), brought to one square side for the whole study, and written as a PNG whose deflate
stream is stored, not compressed: a file's byte size is then a function of its dimensions alone,
so size and dimensions say nothing about which method made it (compressed sizes did: smooth
Fourier images and noisy ones differ by tens of kilobytes).
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
NATURAL_SIDE = 256  # the side of every stimulus in a study that shows no FV at all


def blinding_key(private_dir: Path) -> bytes:
    """The HMAC key: $VITALSTUDY_BLINDING_KEY, else ``private/blinding.key`` (created once, reused).

    The key also draws the counterbalancing (forms.KeyedDraws), so reusing it rebuilds the same
    bundle; ``private/`` is created owner-only.
    """
    private_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    """Turns sources into blinded, deduplicated stimulus files under ``stimuli/``.

    Sources are decoded as they are added and encoded together by ``encode_all``, once the common
    side is known: the largest FV side (FVs of different methods may have different resolutions),
    or ``NATURAL_SIDE`` when there are no FVs. FVs are resampled to it, natural photos centre-cropped
    to a square of that side.
    """

    key: bytes
    run_dir: Path
    files: dict[str, bytes] = field(default_factory=dict)  # stimulus_id -> PNG bytes
    key_entries: dict[str, dict] = field(default_factory=dict)  # stimulus_id -> answer-key record
    _pixels: dict[str, tuple[Image.Image, bool]] = field(default_factory=dict)  # id -> (decoded view, natural)

    def add(self, source: Source) -> dict:
        """Register a source; returns the manifest record without its role (``sha256`` is filled in
        by ``encode_all``)."""
        rel = self._relative(source.path)
        message = json.dumps([source.name, source.crop_box, source.flip]).encode()
        stimulus_id = "s-" + hmac.new(self.key, message, hashlib.sha256).hexdigest()[:12]
        if stimulus_id not in self._pixels:
            self._pixels[stimulus_id] = (decode_view(source), source.natural)
            entry = {"source": rel, "crop_box": list(source.crop_box) if source.crop_box else None}
            self.key_entries[stimulus_id] = {**entry, "flip": source.flip, **source.info}
        return {"stimulus_id": stimulus_id, "file": f"stimuli/{stimulus_id}.png"}

    def side(self) -> int:
        fv_sides = [max(im.size) for im, natural in self._pixels.values() if not natural]
        return max(fv_sides, default=NATURAL_SIDE)

    def encode_all(self) -> None:
        side = self.side()
        for stimulus_id, (image, natural) in sorted(self._pixels.items()):
            self.files[stimulus_id] = encode_png(fit_square(image, side, natural))

    def sha256(self, stimulus_id: str) -> str:
        return hashlib.sha256(self.files[stimulus_id]).hexdigest()

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.run_dir.resolve()).as_posix()
        except ValueError:
            return str(path)


def decode_view(source: Source) -> Image.Image:
    """Decode to RGB and apply the view (crop box, mirror); EXIF orientation only for photos."""
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
    return rgb


def fit_square(image: Image.Image, side: int, natural: bool) -> Image.Image:
    """``side`` x ``side``: a photo centre-cropped and scaled, an FV scaled (left as is when it
    already has that size, so equal-size FVs keep their exact pixels)."""
    if image.size == (side, side):
        return image
    if natural:
        return ImageOps.fit(image, (side, side), Image.Resampling.BICUBIC)
    return image.resize((side, side), Image.Resampling.BICUBIC)


def encode_png(image: Image.Image) -> bytes:
    """A fresh RGB PNG of the pixels only (IHDR, IDAT, IEND), deflate level 0 (stored blocks): equal
    dimensions give equal byte sizes, whatever the content."""
    clean = Image.frombytes("RGB", image.size, image.tobytes())
    out = io.BytesIO()
    clean.save(out, format="PNG", optimize=False, compress_level=0)
    return out.getvalue()
