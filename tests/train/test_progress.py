"""Progress off a terminal: a few plain lines, never a carriage-return stream."""

from __future__ import annotations

from ipr_train import progress


def test_a_bar_off_a_terminal_writes_few_whole_lines_and_its_last_state(capsys, monkeypatch):
    monkeypatch.delenv("IPR_PROGRESS", raising=False)
    with progress.progress_bar(500, "train") as bar:
        for i in range(500):
            bar.update(1)
            bar.set_postfix(loss=f"{1 / (i + 1):.4f}")  # tqdm refreshes on every call
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert 1 <= len(lines) <= 3, lines  # the first state, maybe one more, the last
    assert lines[-1].startswith("train: 100%") and "500/500" in lines[-1]
    assert "loss=0.0020" in lines[-1]


def test_a_bar_inside_another_writes_no_cursor_moves(capsys, monkeypatch):
    """A stage's bar inside the comparison's: off a terminal tqdm would move the cursor up
    with an escape code after every refresh of the inner bar; a log keeps those as text."""
    monkeypatch.delenv("IPR_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)
    with progress.progress_bar(2, "compare") as outer:
        for _ in range(2):
            with progress.progress_bar(5, "stage") as inner:
                for _ in range(5):
                    inner.update(1)
            outer.update(1)
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err
    lines = err.splitlines()
    assert all(line.startswith(("compare:", "stage:")) for line in lines), lines
    assert lines[-1].startswith("compare: 100%")
