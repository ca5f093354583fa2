"""Where datasets live: an explicit argument, else ``$IPR_GYM_DATA``, else the user cache."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_VAR = "IPR_GYM_DATA"
MARKER = ".ipr-dataset.json"


class DatasetMissingError(FileNotFoundError):
    """A dataset an env needs is not installed; the message names the command that fixes it."""

    def __init__(self, name: str, root: Path):
        super().__init__(
            f"the {name!r} dataset is not installed in {root}. Install it with "
            f"`ipr-gym data install {name} --from PATH` (PATH holding a copy such as "
            f"../shared/data) or `ipr-gym data download {name}`; "
            f"set ${ENV_VAR} or pass data_dir= to use another data directory."
        )
        self.name = name
        self.root = root


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory, resolved in order: ``explicit``, ``$IPR_GYM_DATA``, user cache."""
    if explicit is not None:
        return Path(explicit).expanduser()
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return Path(platformdirs.user_cache_dir("ipr-gym")) / "data"


def dataset_dir(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The installed copy of dataset ``name``; ``DatasetMissingError`` if it is absent."""
    base = data_root(root)
    path = base / name
    if not (path / MARKER).is_file():
        raise DatasetMissingError(name, base)
    return path
