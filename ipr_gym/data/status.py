"""What the data directory holds: per dataset, installed or absent, and what it counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ipr_gym.data.datasets import DATASETS
from ipr_gym.data.install import read_marker
from ipr_gym.data.paths import data_root


@dataclass
class DatasetStatus:
    name: str
    path: Path
    state: Literal["installed", "absent", "damaged"]
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # variant -> the files it still lacks (empty: usable); only datasets with variants
    variants: dict[str, list[str]] = field(default_factory=dict)


def dataset_status(name: str, root: str | Path | None = None) -> DatasetStatus:
    """Counts are taken from the files on disk now, not from what the install recorded."""
    dataset = DATASETS[name]
    path = data_root(root) / name
    if read_marker(path) is None:
        return DatasetStatus(name, path, "absent")
    counts = dataset.count(path)
    problems = [
        f"{key}: {counts.get(key, 0)} (expected {want})"
        for key, want in dataset.expected.items()
        if counts.get(key) != want
    ]
    variants = dataset.variants(path) if dataset.variants else {}
    return DatasetStatus(
        name, path, "damaged" if problems else "installed", counts, problems, variants
    )


def data_status(root: str | Path | None = None) -> list[DatasetStatus]:
    return [dataset_status(name, root) for name in sorted(DATASETS)]


def format_status(statuses: list[DatasetStatus], root: Path) -> str:
    lines = [f"data directory: {root}"]
    for status in statuses:
        lines.append(f"{status.name:<10} {status.state}")
        for key, value in status.counts.items():
            lines.append(f"    {key:<26} {value:>6}")
        for problem in status.problems:
            lines.append(f"    damaged: {problem}")
        if status.variants:
            usable = [v for v, missing in status.variants.items() if not missing]
            lines.append(f"    catalogs usable: {', '.join(usable) or 'none'}")
            fetchable = {p.path for p in DATASETS[status.name].parts if p.remote is not None}
            for variant, missing in status.variants.items():
                if not missing:
                    continue
                how = (f"`ipr-gym data download {status.name}`" if set(missing) <= fetchable
                       else f"not downloadable: put them in {status.path}")  # fmt: skip
                lines.append(
                    f"    catalog {variant}: not usable, lacks {', '.join(missing)} ({how})"
                )
    return "\n".join(lines)
