"""Who took part (the paper's Fig. 13): counts of each answer of the optional demographic
questions, with the participants who left a question blank shown as their own bar, so the
shares add up to everyone who took part."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

NOT_ANSWERED = "not answered"


def counts(answers: pd.DataFrame, participants: int, options: dict[str, list[str]]) -> pd.DataFrame:
    """One row per (question, option) in the manifest's option order, plus the unanswered count."""
    rows = []
    for question_id, opts in options.items():
        given = answers[answers["question_id"] == question_id]["value"].value_counts()
        for option in opts + [NOT_ANSWERED]:
            n = int(given.get(option, 0)) if option != NOT_ANSWERED else participants - int(given.sum())
            rows.append({"question_id": question_id, "option": option, "participants": n,
                         "share": n / participants if participants else float("nan")})
    return pd.DataFrame(rows)


def plot(table: pd.DataFrame, titles: dict[str, str], who: str):
    questions = list(dict.fromkeys(table["question_id"]))
    fig, axes = plt.subplots(1, len(questions), figsize=(4.5 * len(questions), 3.6), squeeze=False)
    for ax, question_id in zip(axes.flat, questions):
        part = table[table["question_id"] == question_id]
        sns.barplot(data=part, x="option", y="participants", color=sns.color_palette("colorblind")[0], ax=ax)
        ax.bar_label(ax.containers[0], labels=[f"{s:.0%}" for s in part["share"]], fontsize=8)
        ax.set_title(titles.get(question_id, question_id))
        ax.set_xlabel("")
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"Participants ({who})")
    fig.tight_layout()
    return fig
