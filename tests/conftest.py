"""Shared fixtures: the real data in ../shared/data and an installed copy of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ipr_gym.data import data_root, data_status, install_from

REPO = Path(__file__).resolve().parents[1]

# The two xdist workers take whole files in collection order, where these come last: a slow
# file taken last runs alone while the other worker idles. Collected first, they run beside
# the rest (test_methods' comparison fixture alone takes 150-350 s).
SLOWEST_FIRST = ("tests/train/test_methods.py", "tests/train/test_ipr_run.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def _shared_data() -> Path:
    path = Path(os.environ.get("IPR_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (path / "README.md").is_file():
        pytest.fail(f"the real data is not at {path}; set IPR_SHARED_DATA to ../shared/data")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only local copy of every dataset (never copied into the repo)."""
    return _shared_data()


@pytest.fixture(scope="session")
def installed_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with every dataset installed: the library's own (``$IPR_GYM_DATA``,
    else the user cache) if complete, else a fresh install from the shared copy."""
    given = data_root()
    if all(s.state == "installed" for s in data_status(given)):
        return given
    root = tmp_path_factory.mktemp("ipr-data")
    for name in ("alfworld", "intercode", "webshop"):
        install_from(name, _shared_data(), root)
    return root
