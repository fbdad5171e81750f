"""The one row format every metric writes, so that tables and figures read all metrics alike.

Columns: `metric, model, method, target, seed, value, n, ci_low, ci_high, note`. `target`/`seed`
are `all` for aggregates; `n` counts what the value was computed from; `note` says how (feature
model, judge, N of the real set) or, when a metric could not be computed, `unavailable: <reason>`
with an empty value: never a zero that could be mistaken for a result.
"""

from __future__ import annotations

import math
import os

import pandas as pd

from vitalstudy.io import atomic_path

COLUMNS = ["metric", "model", "method", "target", "seed", "value", "n", "ci_low", "ci_high", "note"]
UNAVAILABLE = "unavailable: "


def row(metric: str, model: str, method: str, value: float, *, target: str = "all", seed: str | int = "all",
        n: int | None = None, ci: tuple[float, float] = (math.nan, math.nan), note: str = "") -> dict:
    return {"metric": metric, "model": model, "method": method, "target": target, "seed": seed,
            "value": float(value), "n": n, "ci_low": ci[0], "ci_high": ci[1], "note": note}


def unavailable(metrics: list[str], model: str, methods: list[str], reason: str) -> list[dict]:
    """Rows that state why a metric has no value (a missing weight file, a method a model cannot run)."""
    return [row(m, model, method, math.nan, note=UNAVAILABLE + reason) for m in metrics for method in methods]


def write_rows(path: str | os.PathLike, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def read_rows(paths: list[str | os.PathLike]) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype={"target": str, "seed": str, "note": str}, keep_default_na=False,
                          na_values={"value": [""], "n": [""], "ci_low": [""], "ci_high": [""]})
              for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
