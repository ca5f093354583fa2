"""Writing a benchmark's results: ``results/<name>.json`` and a Markdown table beside it."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """CPU model, cores, memory and Python: enough to compare runs across machines."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def write_results(
    name: str, metrics: dict[str, float], ratios: dict[str, float], notes: str = ""
) -> Path:
    """Write the JSON record and its Markdown table; returns the JSON path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "metrics": metrics,
        "ratios": ratios,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    lines = [f"# {name}", "", f"{record['date']} on {record['machine']}", ""]
    lines += ["| metric | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.6g} |" for k, v in metrics.items()]
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.3g} |" for k, v in ratios.items()]
    if notes:
        lines += ["", notes]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    return path
