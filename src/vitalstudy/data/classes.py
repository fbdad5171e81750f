"""The ImageNet-1k class index: index <-> WordNet id <-> readable name, in the standard order."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from vitalstudy.errors import ConfigError


@dataclass(frozen=True)
class ImageNetClasses:
    wnids: tuple[str, ...]
    wordnet_names: tuple[str, ...]
    readable_names: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.wnids)})

    def __len__(self) -> int:
        return len(self.wnids)

    def __contains__(self, wnid: str) -> bool:
        return wnid in self._index

    def index(self, wnid: str) -> int:
        try:
            return self._index[wnid]
        except KeyError:
            raise ConfigError(f"{wnid!r} is not an ImageNet-1k WordNet id (expected e.g. 'n07920052')") from None

    def wnid(self, index: int) -> str:
        return self.wnids[index]

    def name(self, key: str | int) -> str:
        """Readable class name (CLIP's cleaned names, e.g. 'tiger cat') for a wnid or an index."""
        return self.readable_names[key if isinstance(key, int) else self.index(key)]


@lru_cache(maxsize=1)
def imagenet_classes() -> ImageNetClasses:
    text = resources.files("vitalstudy.data").joinpath("imagenet_classes.tsv").read_text(encoding="utf-8")
    rows = list(csv.DictReader((line for line in text.splitlines() if not line.startswith("#")), delimiter="\t"))
    assert [int(r["index"]) for r in rows] == list(range(len(rows))), "class table out of order"
    return ImageNetClasses(
        wnids=tuple(r["wnid"] for r in rows),
        wordnet_names=tuple(r["wordnet_name"] for r in rows),
        readable_names=tuple(r["readable_name"] for r in rows),
    )
