"""A contact sheet of a target's references, so a person can check the selection at a glance."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageOps

from vitalstudy.data.sources import apply_view, load_rgb


def montage(references: list[dict], columns: int = 8, tile: int = 112) -> Image.Image:
    columns = max(1, min(columns, len(references)))
    rows = math.ceil(len(references) / columns)
    sheet = Image.new("RGB", (columns * tile, rows * tile), "white")
    for i, ref in enumerate(references):
        image = load_rgb(ref["path"])
        if ref.get("patch_box"):  # inner neuron: outline the best patch on the full image
            image = image.copy()
            ImageDraw.Draw(image).rectangle(ref["patch_box"], outline=(255, 40, 40),
                                            width=max(2, min(image.size) // 100))
        thumb = ImageOps.fit(apply_view(image, ref["view"]), (tile, tile), Image.Resampling.BILINEAR)
        sheet.paste(thumb, ((i % columns) * tile, (i // columns) * tile))
    return sheet
