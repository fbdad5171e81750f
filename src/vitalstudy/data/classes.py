"""A model's class list: output index <-> class id <-> readable name, in the model's output order.

ImageNet-1k (WordNet ids, CLIP's cleaned names) unless the model's declaration names a labels file
(`models.declare.<name>.classes`). A labels file is UTF-8 text, one line per model output in output
order: `id` alone or `id<TAB>display name`; lines starting with `#` are comments, blank lines only
at the end. An id is a target id, an image-folder name of the image source and a path component of
every stage, so it is letters, digits, `_`, `.`, `-` (starting with a letter or digit), and never
looks like another kind of target id (`<layer>_c<channel>`, `concept-...`, `accent-...`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from vitalstudy.errors import ConfigError

CLASS_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
NEURON_ID = re.compile(r"^(?P<layer>.+)_c(?P<channel>[0-9]+)$")  # `<layer>_c<channel>`
RESERVED_PREFIXES = ("concept-", "accent-")
IMAGENET = "ImageNet-1k"


@dataclass(frozen=True)
class ClassList:
    """`ids[i]` names output `i`; `names` are the readable names (study labels, CLIP prompts),
    `alternatives` a second accepted name per class (ImageNet: the WordNet lemma), `origin` where
    the list comes from (ImageNet-1k, or the labels file) for messages."""

    ids: tuple[str, ...]
    names: tuple[str, ...]
    alternatives: tuple[str, ...]
    origin: str = IMAGENET

    def __post_init__(self):
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.ids)})

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, class_id: str) -> bool:
        return class_id in self._index

    @property
    def is_imagenet(self) -> bool:
        return self.origin == IMAGENET

    def index(self, class_id: str) -> int:
        try:
            return self._index[class_id]
        except KeyError:
            raise ConfigError(f"{class_id!r} is not {self.describe()}") from None

    def id(self, index: int) -> str:
        return self.ids[index]

    def name(self, key: str | int) -> str:
        """Readable class name for an id or an output index."""
        return self.names[key if isinstance(key, int) else self.index(key)]

    def describe(self) -> str:
        """'an ImageNet-1k WordNet id (expected e.g. 'n07920052')' or 'a class of labels.txt (...)'."""
        if self.is_imagenet:
            return "an ImageNet-1k WordNet id (expected e.g. 'n07920052')"
        return f"a class of {self.origin} ({', '.join(self.ids[:3])}{', ...' if len(self.ids) > 3 else ''})"

    def unknown(self, key: str, class_id: str, model: str | None = None) -> ConfigError:
        """One line naming the key, the list and the nearest valid ids."""
        from vitalstudy.models.declarations import nearest

        owner = f" of {model}" if model else ""
        return ConfigError(f"{key}: {class_id!r} is not {self.describe()}{owner}; nearest: {nearest(class_id, self.ids)}")


@lru_cache(maxsize=1)
def imagenet_classes() -> ClassList:
    text = resources.files("vitalstudy.data").joinpath("imagenet_classes.tsv").read_text(encoding="utf-8")
    rows = list(csv.DictReader((line for line in text.splitlines() if not line.startswith("#")), delimiter="\t"))
    assert [int(r["index"]) for r in rows] == list(range(len(rows))), "class table out of order"
    return ClassList(ids=tuple(r["wnid"] for r in rows), names=tuple(r["readable_name"] for r in rows),
                     alternatives=tuple(r["wordnet_name"].replace("_", " ") for r in rows))


def class_id_problem(class_id: str) -> str | None:
    """Why `class_id` cannot name a class (None when it can)."""
    if not CLASS_ID.match(class_id):
        return (f"id {class_id!r} is not letters, digits, '_', '.', '-' (starting with a letter or digit, "
                f"at most 100 characters)")
    if NEURON_ID.match(class_id):
        return f"id {class_id!r} looks like an inner-neuron id '<layer>_c<channel>'"
    if class_id.startswith(RESERVED_PREFIXES):
        return f"id {class_id!r} starts with {class_id.split('-', 1)[0]}-, the prefix of another kind of target"
    return None


def parse_labels(text: str, origin: str) -> ClassList:
    """The class list of a labels file's text; ConfigError naming `origin`, the line and the problem."""
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()  # blank lines at the end
    ids, names, seen = [], [], {}
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw

        def fail(problem: str, number=number):
            return ConfigError(f"{origin}, line {number}: {problem}")

        if line.startswith("#"):
            continue
        if not line.strip():
            raise fail("blank line (every line is one output of the model, in output order)")
        class_id, tab, name = line.partition("\t")
        if "\t" in name:
            raise fail("more than one tab (expected 'id' or 'id<TAB>display name')")
        problem = class_id_problem(class_id)
        if problem:
            raise fail(problem)
        if class_id in seen:
            raise fail(f"id {class_id!r} repeats line {seen[class_id]}")
        name = name.strip()
        if tab and not name:
            raise fail(f"empty display name after the tab of {class_id!r}")
        if not name.isprintable():
            raise fail(f"display name {name!r} holds control characters")
        seen[class_id] = number
        ids.append(class_id)
        names.append(name or class_id.replace("_", " "))
    if not ids:
        raise ConfigError(f"{origin}: no classes (one line per model output: 'id' or 'id<TAB>display name')")
    return ClassList(ids=tuple(ids), names=tuple(names), alternatives=tuple(names), origin=origin)


def read_labels_file(path: str | Path) -> ClassList:
    """A labels file's class list (cached per file content); its sha256 goes into the next provenance record."""
    from vitalstudy.provenance import asset_digest, record_asset

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"labels file {path} does not exist (one line per model output: 'id' or 'id<TAB>name')")
    record_asset(path)
    return _labels_of(str(path), asset_digest(path))


@lru_cache(maxsize=16)
def _labels_of(path: str, _sha256: str) -> ClassList:
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: not UTF-8 text (byte {data[exc.start]:#04x})") from None
    if "\x00" in text:
        raise ConfigError(f"{path}, line {text[:text.index(chr(0))].count(chr(10)) + 1}: a NUL byte (not a text file)")
    return parse_labels(text, path)


def classes_for(spec) -> ClassList:
    """The class list of a model (a ModelSpec or its name): ImageNet-1k unless its declaration names a labels file."""
    if isinstance(spec, str):
        from vitalstudy.models.registry import get_spec

        spec = get_spec(spec)
    return read_labels_file(spec.classes) if spec.classes else imagenet_classes()
