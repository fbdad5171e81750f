"""Method labels and order shared by figures, so a method reads and sorts the same everywhere
(the registry's order, the paper's: VITAL first, then the baselines)."""

from __future__ import annotations

from vitalstudy.fv.registry import METHODS

NOT_METHODS = {"real": "real images"}  # rows of figures that no method made
MISSING_MARKER = "X"  # the scatter marker of a method the registry does not know


def method_name(method: str) -> str:
    return METHODS[method].display if method in METHODS else NOT_METHODS.get(method, method)


def method_marker(method: str) -> str:
    return METHODS[method].marker if method in METHODS else MISSING_MARKER


def ordered_methods(methods) -> list[str]:
    """The registered methods in the paper's order, then any others alphabetically."""
    present = set(methods)
    return [m for m in METHODS if m in present] + sorted(present - set(METHODS))
