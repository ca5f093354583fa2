"""ALFWorld tests read the real games from the installed data directory."""

import pytest


@pytest.fixture(autouse=True)
def _alfworld_data(installed_data, monkeypatch):
    monkeypatch.setenv("IPR_GYM_DATA", str(installed_data))
