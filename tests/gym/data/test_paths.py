"""The data directory resolves explicit argument, then $IPR_GYM_DATA, then the user cache."""

from pathlib import Path

import pytest

from ipr_gym.data import DatasetMissingError, data_root, dataset_dir


def test_explicit_argument_wins_over_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IPR_GYM_DATA", str(tmp_path / "from-env"))
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_environment_variable_wins_over_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("IPR_GYM_DATA", str(tmp_path / "from-env"))
    assert data_root() == tmp_path / "from-env"


def test_user_cache_is_the_fallback(monkeypatch, tmp_path):
    monkeypatch.delenv("IPR_GYM_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_root() == tmp_path / "cache" / "ipr-gym" / "data"


def test_missing_dataset_error_names_the_command_that_installs_it(tmp_path):
    with pytest.raises(DatasetMissingError) as caught:
        dataset_dir("intercode", tmp_path)
    message = str(caught.value)
    assert "ipr-gym data install intercode --from" in message
    assert "ipr-gym data download intercode" in message
    assert str(tmp_path) in message
    assert isinstance(caught.value, FileNotFoundError)
    assert not Path(tmp_path / "intercode").exists()
