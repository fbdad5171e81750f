"""Progress lines: in a log (not a terminal) each report is a plain line with the ETA, never a
carriage-return redraw; on a terminal tqdm redraws in place."""

import io
import time

from vitalstudy.progress import progress


def test_log_lines_are_plain_lines_with_counts_and_eta(monkeypatch):
    monkeypatch.setenv("VITALSTUDY_PROGRESS_SECONDS", "0")
    log = io.StringIO()
    for _ in progress(range(5), desc="generate resnet50 vital: steps", unit="step", stream=log):
        time.sleep(0.01)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) >= 2 and lines[0].startswith("generate resnet50 vital: steps:   0%")
    assert "5/5" in lines[-1] and "100%" in lines[-1] and sum("5/5" in line for line in lines) == 1
    assert any("<" in line and "step/s" in line for line in lines[1:])  # elapsed<remaining, rate


def test_log_lines_are_rate_limited(monkeypatch):
    monkeypatch.setenv("VITALSTUDY_PROGRESS_SECONDS", "60")
    log = io.StringIO()
    with progress(total=1000, desc="score patches", unit="image", stream=log) as bar:
        for _ in range(1000):
            bar.update()
    lines = log.getvalue().splitlines()
    assert len(lines) <= 3 and "1000/1000" in lines[-1]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_the_redrawn_bar():
    screen = _Terminal()
    for _ in progress(range(3), desc="forward", stream=screen):
        pass
    assert "\r" in screen.getvalue() and "3/3" in screen.getvalue()


def test_nested_bars_in_a_log_carry_no_cursor_moves(monkeypatch):
    monkeypatch.setenv("VITALSTUDY_PROGRESS_SECONDS", "0")
    log = io.StringIO()
    with progress(total=2, desc="targets", stream=log) as outer:
        for _ in range(2):
            for _ in progress(range(3), desc="  steps", leave=False, stream=log):
                pass
            outer.update()
    assert "\x1b" not in log.getvalue() and "\r" not in log.getvalue()
    assert "  steps: 100%" in log.getvalue() and "targets: 100%" in log.getvalue()
