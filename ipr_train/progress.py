"""Progress bars and metric logs: every long stage shows where it is and leaves numbers.

``progress_bar`` is tqdm on stderr: a live bar on a terminal; elsewhere (a log file, CI)
one plain line at most every ``LOG_INTERVAL`` seconds, so logs stay readable; silent when
``IPR_PROGRESS=0``. ``MetricsLog``
appends one JSON object per event to ``metrics.jsonl`` in a run's folder and, when
TensorBoard is installed, writes the same scalars there.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

LOG_INTERVAL = 10.0


class _Lines:
    """A stream for tqdm where no terminal is: a refresh becomes a line of its own, at most
    one per ``LOG_INTERVAL`` seconds, and the bar's last state when it closes (tqdm redraws
    with carriage returns, which a log keeps as one endless line, and refreshes on every
    ``set_postfix``)."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.shown = 0.0
        self.pending = ""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        now = time.monotonic()
        if line and now - self.shown < LOG_INTERVAL:
            self.pending = line  # shown later, or when the bar closes
            return
        line = line or self.pending
        self.pending = ""
        if line:
            self.stream.write(line + "\n")
            self.shown = now

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(total: int | None, desc: str, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    disable = kwargs.pop("disable", False) or os.environ.get("IPR_PROGRESS", "1") == "0"
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, dynamic_ncols=True, disable=disable, **kwargs)
    # position 0 for every bar: a bar opened inside another (a stage inside the comparison)
    # would otherwise move the cursor with escape codes, which a log keeps as text
    kwargs.setdefault("position", 0)
    return tqdm(total=total, desc=desc, file=_Lines(sys.stderr), ncols=100,
                mininterval=LOG_INTERVAL, disable=disable, **kwargs)  # fmt: skip


def quiet_transformers() -> None:
    """No per-load bars and load reports from transformers: a long job loads hundreds of
    models and shows its own progress."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


class MetricsLog:
    def __init__(self, folder: str | os.PathLike[str], enabled: bool = True):
        self.path = Path(folder) / "metrics.jsonl"
        self.enabled = enabled
        self._tb: Any = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(folder) / "tensorboard"))
            except ImportError:  # tensorboard not installed: the JSONL log alone
                self._tb = None

    def log(self, step: int, **values: Any) -> None:
        if not self.enabled:
            return
        record = {"time": round(time.time(), 3), "step": step, **values}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, int | float):
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
