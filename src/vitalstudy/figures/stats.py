"""Statistics printed beside each study figure.

The unit of analysis is the participant: answers of one person are not independent, so intervals
resample participants (a cluster bootstrap) and tests compare per-participant means. Whether a
comparison of two methods is paired depends on the study design, which this module reads off the
data: paired (Wilcoxon signed-rank) on the participants who saw both methods, unpaired
(Mann–Whitney U) when no participant saw both. Several methods seen by the same participants also
get a Friedman test. The tests are scipy's; this module only chooses them, adds effect sizes and
corrects the pairwise p-values for multiplicity (Holm).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from vitalstudy.figures.methods import ordered_methods
from vitalstudy.seeding import rng as seeded_rng

NAN_CI = (math.nan, math.nan)


def mean(values: np.ndarray) -> float:
    return float(np.mean(values))


def median(values: np.ndarray) -> float:
    return float(np.median(values))


def participant_bootstrap_ci(values: pd.Series, participants: pd.Series, statistic: Callable[[np.ndarray], float],
                             iterations: int, confidence: float, seed: int, *key: object) -> tuple[float, float]:
    """Percentile interval of `statistic` over all values, resampling whole participants.

    The random stream depends on (seed, key) only, so adding a method to a study does not move the
    other methods' intervals. (nan, nan) with fewer than two participants or no iterations.
    """
    groups = [np.asarray(g, dtype=float) for _, g in values.groupby(participants.to_numpy(), sort=True)]
    if iterations <= 0 or len(groups) < 2:
        return NAN_CI

    def resampled(index: np.ndarray) -> float:
        return statistic(np.concatenate([groups[i] for i in index]))

    result = stats.bootstrap((np.arange(len(groups)),), resampled, n_resamples=iterations, vectorized=False,
                             confidence_level=confidence, method="percentile",
                             rng=seeded_rng(seed, "bootstrap", *key))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1); nan stays nan."""
    p = np.asarray(pvalues, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    adjusted = np.full_like(p, np.nan)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (len(order) - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted.tolist()


def wilcoxon_paired(x: np.ndarray, y: np.ndarray) -> dict:
    """Wilcoxon signed-rank test of x - y, with the matched-pairs rank-biserial correlation
    (positive: x tends to be larger). Zero differences are dropped, as the test does by default."""
    d = np.asarray(x, float) - np.asarray(y, float)
    d = d[d != 0]
    if len(d) == 0:
        return {"test": "wilcoxon", "statistic": math.nan, "p": 1.0, "effect": 0.0,
                "effect_name": "rank-biserial (paired)"}
    res = stats.wilcoxon(x, y)
    ranks = stats.rankdata(np.abs(d))
    effect = (ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum()
    return {"test": "wilcoxon", "statistic": float(res.statistic), "p": float(res.pvalue), "effect": float(effect),
            "effect_name": "rank-biserial (paired)"}


def mann_whitney(x: np.ndarray, y: np.ndarray) -> dict:
    """Two-sided Mann–Whitney U with the rank-biserial correlation 2U/(n1 n2) - 1 (positive: x larger)."""
    res = stats.mannwhitneyu(x, y, alternative="two-sided")
    effect = 2 * res.statistic / (len(x) * len(y)) - 1
    return {"test": "mann-whitney", "statistic": float(res.statistic), "p": float(res.pvalue), "effect": float(effect),
            "effect_name": "rank-biserial (unpaired)"}


def friedman(wide: pd.DataFrame) -> dict | None:
    """Friedman test over the methods (columns) on the participants (rows) who saw all of them,
    with Kendall's W; None when there are fewer than three methods or two complete participants."""
    complete = wide.dropna()
    if wide.shape[1] < 3 or len(complete) < 2:
        return None
    res = stats.friedmanchisquare(*(complete[c].to_numpy() for c in complete.columns))
    w = res.statistic / (len(complete) * (wide.shape[1] - 1))
    return {"comparison": "all methods", "test": "friedman", "n": len(complete), "statistic": float(res.statistic),
            "p": float(res.pvalue), "p_holm": math.nan, "effect": float(w), "effect_name": "Kendall's W"}


def compare_methods(wide: pd.DataFrame) -> pd.DataFrame:
    """Every pair of methods (columns of per-participant means, nan where a participant did not
    see a method), paired or unpaired as the design allows, Holm-corrected; plus Friedman."""
    rows = []
    for a, b in combinations(wide.columns, 2):
        both = wide[[a, b]].dropna()
        only_a, only_b = wide[a].dropna(), wide[b].dropna()
        if len(both) >= 2:
            result, n = wilcoxon_paired(both[a].to_numpy(), both[b].to_numpy()), len(both)
        elif len(both) == 0 and len(only_a) >= 1 and len(only_b) >= 1 and len(only_a) + len(only_b) >= 3:
            result, n = mann_whitney(only_a.to_numpy(), only_b.to_numpy()), len(only_a) + len(only_b)
        else:
            continue
        rows.append({"comparison": f"{a} vs {b}", "n": n, **result})
    adjusted = holm([r["p"] for r in rows])
    rows = [{**r, "p_holm": p} for r, p in zip(rows, adjusted)]
    omnibus = friedman(wide)
    columns = ["comparison", "test", "n", "statistic", "p", "p_holm", "effect", "effect_name"]
    return pd.DataFrame(([omnibus] if omnibus else []) + rows, columns=columns)


def method_summary(frame: pd.DataFrame, value: str, statistic: Callable[[np.ndarray], float], bootstrap: dict,
                   seed: int, *key: object) -> pd.DataFrame:
    """Per method: n answers, n participants, the statistic and its participant-bootstrap interval."""
    rows = []
    for method in ordered_methods(frame["method"]):
        part = frame[frame["method"] == method]
        low, high = participant_bootstrap_ci(part[value], part["participant"], statistic, bootstrap["iterations"],
                                             bootstrap["confidence"], seed, *key, method)
        rows.append({"method": method, "n_answers": len(part), "n_participants": part["participant"].nunique(),
                     "estimate": float(statistic(part[value].to_numpy(dtype=float))), "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def participant_means(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """Participants x methods table of each participant's mean `value` (nan: method not seen)."""
    return frame.pivot_table(index="participant", columns="method", values=value, aggfunc="mean").reindex(
        columns=ordered_methods(frame["method"]))


def figure_statistics(frame: pd.DataFrame, value: str, measure: str, statistic: Callable[[np.ndarray], float],
                      bootstrap: dict, seed: int, *key: object) -> pd.DataFrame:
    """The CSV beside a study figure: per-method estimates with participant-bootstrap intervals
    (`row` = estimate), then the method comparisons on per-participant means (`row` = test)."""
    summary = method_summary(frame, value, statistic, bootstrap, seed, *key, measure).assign(row="estimate",
                                                                                          measure=measure)
    tests = compare_methods(participant_means(frame, value)).assign(row="test", measure=f"participant {value}")
    return pd.concat([f for f in (summary, tests) if len(f)], ignore_index=True).reindex(columns=
        ["row", "measure", "method", "n_answers", "n_participants", "estimate", "ci_low", "ci_high", "comparison",
         "test", "n", "statistic", "p", "p_holm", "effect", "effect_name"])
