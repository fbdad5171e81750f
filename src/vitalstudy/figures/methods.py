"""Method names and order shared by figures and tables, so a method reads and sorts the same
everywhere (the paper's order: VITAL first, then the baselines)."""

from __future__ import annotations

METHOD_NAMES = {"vital": "VITAL", "vital_lrp": "VITAL (LRP)", "fourier": "Fourier", "maco": "MACO",
                "deepinversion": "DeepInv", "real": "real images"}
METHOD_ORDER = ["vital", "vital_lrp", "maco", "fourier", "deepinversion"]


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def ordered_methods(methods) -> list[str]:
    """The known methods in the paper's order, then any others alphabetically."""
    present = set(methods)
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))
