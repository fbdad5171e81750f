"""Method labels and order shared by figures, so a method reads and sorts the same everywhere
(the registry's order, the paper's: VITAL first, then the baselines)."""

from __future__ import annotations

from vitalstudy.fv.registry import METHODS

METHOD_NAMES = {**{m.name: m.display for m in METHODS.values()}, "real": "real images"}


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def ordered_methods(methods) -> list[str]:
    """The registered methods in the paper's order, then any others alphabetically."""
    present = set(methods)
    return [m for m in METHODS if m in present] + sorted(present - set(METHODS))
