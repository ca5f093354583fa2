"""Downloading over real HTTP from a mirror on loopback, and failing clearly offline."""

from __future__ import annotations

import functools
import http.server
import socket
import threading

import pytest

from ipr_gym.cli import main as ipr_gym_main
from ipr_gym.data import DownloadError, dataset_status, download


@pytest.fixture(scope="module")
def mirror(shared_data):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared_data))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_from_a_mirror_installs_verified_files(mirror, tmp_path):
    report = download("intercode", tmp_path, mirror=mirror)
    assert report.counts["tasks"] == 1034
    assert report.counts["databases"] == 20
    assert report.counts["trajectory_files"] == 3
    assert dataset_status("intercode", tmp_path).state == "installed"


def test_download_skips_parts_the_mirror_lacks(mirror, tmp_path):
    report = download("webshop", tmp_path, mirror=mirror)
    assert report.counts["products_with_attributes"] == 1000
    assert report.counts["catalog_products"] == 0  # only WebShop's own home has it
    assert "items_shuffle_1000.json" not in report.parts


def test_offline_download_fails_clearly_and_installs_nothing(tmp_path, capsys):
    unreachable = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(DownloadError) as caught:
        download("intercode", tmp_path, mirror=unreachable, timeout=5)
    assert "could not download ic_spider_dev.json" in str(caught.value)
    assert "ipr-gym data install intercode --from PATH" in str(caught.value)
    assert dataset_status("intercode", tmp_path).state == "absent"
    assert list(tmp_path.glob(".staging-*")) == []

    code = ipr_gym_main(
        ["data", "download", "intercode", "--data-dir", str(tmp_path), "--mirror", unreachable]
    )
    assert code == 1
    assert "could not download" in capsys.readouterr().err
