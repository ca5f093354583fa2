"""Installing datasets from a local copy: counts, checksums, idempotence, atomicity."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from ipr_gym.cli import main as ipr_gym_main
from ipr_gym.data import InstallError, data_status, dataset_dir, dataset_status, install_from


def test_status_reports_the_real_counts_of_every_dataset(installed_data, capsys):
    statuses = {s.name: s for s in data_status(installed_data)}
    assert {name: s.state for name, s in statuses.items()} == {
        "alfworld": "installed",
        "intercode": "installed",
        "webshop": "installed",
    }
    alfworld = statuses["alfworld"].counts
    assert [alfworld[s] for s in ("train", "valid_seen", "valid_unseen", "valid_train")] == [
        3553,
        140,
        134,
        200,
    ]
    assert alfworld["eto_expert_trajectories"] == 3554
    assert statuses["intercode"].counts["tasks"] == 1034
    assert statuses["intercode"].counts["databases"] == 20
    webshop = statuses["webshop"].counts
    assert webshop["products_with_attributes"] == 1000
    assert webshop["real_products"] == 7
    assert webshop["human_goals"] == 12087
    assert webshop["html_mocks"] == 4

    assert ipr_gym_main(["data", "status", "--data-dir", str(installed_data)]) == 0
    printed = capsys.readouterr().out
    assert "valid_unseen" in printed and "3553" in printed and "1034" in printed


def test_second_install_is_a_no_op(shared_data, tmp_path):
    first = install_from("intercode", shared_data, tmp_path)
    marker = first.path / ".ipr-dataset.json"
    stamp = marker.stat().st_mtime_ns
    second = install_from("intercode", shared_data, tmp_path)
    assert (first.action, second.action) == ("installed", "unchanged")
    assert marker.stat().st_mtime_ns == stamp
    assert second.counts == first.counts


def test_install_accepts_a_copy_of_one_dataset(shared_data, tmp_path):
    report = install_from("webshop", shared_data / "webshop", tmp_path / "data")
    assert report.counts["human_goals"] == 12087
    assert dataset_dir("webshop", tmp_path / "data") == tmp_path / "data" / "webshop"


def test_corrupt_file_is_refused_and_nothing_is_installed(shared_data, tmp_path):
    copy = tmp_path / "copy" / "intercode"
    shutil.copytree(shared_data / "intercode", copy)
    (copy / "ic_spider_dev.json").chmod(0o644)
    with (copy / "ic_spider_dev.json").open("r+b") as f:
        f.seek(100)
        f.write(b"#")
    with pytest.raises(InstallError, match=r"checksum mismatch for .*ic_spider_dev\.json"):
        install_from("intercode", copy, tmp_path / "data")
    assert dataset_status("intercode", tmp_path / "data").state == "absent"
    assert list(tmp_path.glob("data/.*")) == []  # no lock, no staging folder


def test_concurrent_installs_take_turns_and_leave_no_lock(shared_data, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        reports = list(pool.map(lambda _: install_from("intercode", shared_data, tmp_path), "abc"))
    assert sorted(r.action for r in reports) == ["installed", "unchanged", "unchanged"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["intercode"]


def test_missing_required_file_is_named(shared_data, tmp_path):
    copy = tmp_path / "copy" / "intercode"
    copy.mkdir(parents=True)
    shutil.copy(shared_data / "intercode" / "ic_spider_dev.json", copy)
    with pytest.raises(InstallError, match=r"lacks ic_spider_dbs\.sql"):
        install_from("intercode", copy, tmp_path / "data")


def test_damaged_install_is_reported(shared_data, tmp_path):
    report = install_from("webshop", shared_data, tmp_path)
    (report.path / "items_ins_v2_1000.json").write_text(json.dumps({"B0": {}}))
    status = dataset_status("webshop", tmp_path)
    assert status.state == "damaged"
    assert "products_with_attributes: 1 (expected 1000)" in status.problems


def test_killed_install_leaves_the_dataset_absent_then_installs_cleanly(shared_data, tmp_path):
    root = tmp_path / "data"
    command = [sys.executable, "-m", "ipr_gym.cli", "data", "install", "alfworld"]
    command += ["--from", str(shared_data), "--data-dir", str(root)]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 60
    staged_files = 0
    while time.monotonic() < deadline and process.poll() is None:
        staging = list(root.glob(".staging-alfworld-*"))
        if staging:
            staged_files = sum(1 for _ in staging[0].rglob("game.tw-pddl"))
            if staged_files > 100:
                break
        time.sleep(0.01)
    assert process.poll() is None, "the install finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert staged_files > 100
    assert dataset_status("alfworld", root).state == "absent"
    assert not (root / "alfworld").exists()

    report = install_from("alfworld", shared_data, root)
    assert report.action == "installed"
    assert report.counts["valid_unseen"] == 134
    assert sorted(p.name for p in root.iterdir()) == ["alfworld"]  # staging and lock gone


def test_ensure_installs_from_a_local_copy_once(shared_data, tmp_path, capsys):
    root = tmp_path / "data"
    args = ["data", "ensure", "intercode", "--from", str(shared_data), "--data-dir", str(root)]
    assert ipr_gym_main(args) == 0
    assert "intercode: installed in" in capsys.readouterr().out
    assert dataset_status("intercode", root).state == "installed"
    assert ipr_gym_main(args) == 0  # already there: nothing is installed again
    assert capsys.readouterr().out.strip() == f"intercode: installed in {root / 'intercode'}"
