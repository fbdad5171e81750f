"""Progress with an ETA for every long stage, readable both live and in a job's log.

On a terminal it is a tqdm bar redrawn in place. When stderr is not a terminal (a Snakemake job
writes it to its log file), the same tqdm line is printed as a plain line of its own at most every
`VITALSTUDY_PROGRESS_SECONDS` seconds (default 30) and once at the end, so a log holds a readable
history ("generate resnet50 vital: 40%|####      | 800/2000 [02:10<03:15, 6.1 step/s]") instead of
carriage-return spam.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable

from tqdm import tqdm

LOG_INTERVAL_ENV = "VITALSTUDY_PROGRESS_SECONDS"
_CURSOR_MOVES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # nested bars move the cursor between their lines


class _LinePerUpdate:
    """A file for tqdm that turns each in-place redraw into one line."""

    def __init__(self, stream):
        self.stream, self.last = stream, None

    def write(self, text: str) -> None:
        line = _CURSOR_MOVES.sub("", text).replace("\r", "").rstrip()
        counts = line.split("[")[0]  # description, percentage, bar and n/total; the timings follow
        if line and counts != self.last:  # closing a bar redraws its last state: once is enough
            self.stream.write(line + "\n")
            self.last = counts

    def flush(self) -> None:
        self.stream.flush()


def _is_terminal(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             leave: bool = True, disable: bool = False, stream=None) -> tqdm:
    """A tqdm bar on stderr (or `stream`): live on a terminal, periodic plain lines in a log.
    `disable`: for work too small to report (the bar then only iterates)."""
    stream = stream or sys.stderr
    if _is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=disable, file=stream,
                    dynamic_ncols=True)
    interval = float(os.environ.get(LOG_INTERVAL_ENV, 30))
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=True, disable=disable, file=_LinePerUpdate(stream),
                ascii=True, ncols=100, mininterval=interval, maxinterval=max(interval, 1.0) * 10)


def log(message: str) -> None:
    """Print a message above any live bar (a plain print would break the bar's line)."""
    tqdm.write(str(message), file=sys.stderr)
