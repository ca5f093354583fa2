"""Installing a dataset into the data directory: verified, idempotent and atomic.

A dataset is built in a hidden staging folder beside its final place, checked (checksums of
its sources, then the counts a complete copy must show), marked complete, and only then
renamed into place. An install killed at any point leaves at most a staging folder, which
``status`` ignores and the next install removes, so a dataset is either absent or whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ipr_gym.data.datasets import Dataset, Part, get_dataset
from ipr_gym.data.paths import MARKER, data_root


class InstallError(RuntimeError):
    """The source is incomplete or corrupt; nothing was changed in the data directory."""


@dataclass
class InstallReport:
    name: str
    path: Path
    action: Literal["installed", "unchanged"]
    counts: dict[str, int]
    parts: list[str] = field(default_factory=list)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_folder(dataset: Dataset, source: Path) -> Path:
    """``source/<name>`` for a copy of all datasets, or ``source`` itself for one dataset."""
    first = next(p for p in dataset.parts if p.required)
    for candidate in (source / dataset.name, source):
        if (candidate / first.path).is_file():
            return candidate
    raise InstallError(
        f"{source} holds no copy of {dataset.name!r}: expected {source / dataset.name / first.path}"
    )


def verify(part: Part, path: Path) -> str:
    """The file's sha256, after checking it against the manifest when the part has one."""
    actual = sha256_of(path)
    if part.sha256 is not None and actual != part.sha256:
        raise InstallError(
            f"checksum mismatch for {path}: expected sha256 {part.sha256}, got {actual}; "
            "the copy is corrupt or not the official file"
        )
    return actual


def unpack(archive: Path, dest: Path) -> None:
    """Unpack a tar (any compression) or zip archive into ``dest``, refusing unsafe paths."""
    dest.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".zip" or archive.name.endswith(".zip"):
        import zipfile

        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    raise InstallError(f"unsafe path {name!r} in {archive}")
            zf.extractall(dest)
        return
    with tarfile.open(archive, "r:*") as tf:
        tf.extractall(dest, filter="data")


def place(part: Part, path: Path, staging: Path) -> None:
    """Put one verified part into the staging folder: unpacked or copied."""
    if part.unpack_to is not None:
        unpack(path, staging / part.unpack_to)
    else:
        target = staging / part.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


@contextlib.contextmanager
def _locked(base: Path, name: str) -> Iterator[None]:
    """Hold ``.NAME.lock`` in ``base``; the file is removed on the way out, success or not.

    A waiter may have opened the file just before its holder removed it: it then holds a
    lock nobody else can see, so it checks that the file it locked is still the one at the
    path and tries again if not.
    """
    base.mkdir(parents=True, exist_ok=True)
    path = base / f".{name}.lock"
    while True:
        lock = path.open("a")
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            current = os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        lock.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # before the unlock: no one locks a removed file
        lock.close()


def read_marker(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / MARKER).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@contextlib.contextmanager
def staged(dataset: Dataset, base: Path) -> Iterator[Path]:
    """A fresh staging folder for ``dataset`` under the install lock; removed on failure.

    Staging folders left by killed installs are removed first (the lock says none is live).
    """
    with _locked(base, dataset.name):
        for stale in base.glob(f".staging-{dataset.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = base / f".staging-{dataset.name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def commit(
    dataset: Dataset, staging: Path, base: Path, provenance: dict[str, Any]
) -> InstallReport:
    """Check the staged copy's counts, mark it complete and rename it into place."""
    counts = dataset.count(staging)
    short = {k: (counts.get(k, 0), v) for k, v in dataset.expected.items() if counts.get(k) != v}
    if short:
        detail = ", ".join(f"{k}: {got} (expected {want})" for k, (got, want) in short.items())
        raise InstallError(f"{dataset.name} is incomplete after unpacking: {detail}")
    marker = {
        "name": dataset.name,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": counts,
        **provenance,
    }
    (staging / MARKER).write_text(json.dumps(marker, indent=1))
    target = base / dataset.name
    old = None
    if target.exists():
        old = base / f".old-{dataset.name}-{uuid.uuid4().hex[:8]}"
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return InstallReport(dataset.name, target, "installed", counts, sorted(provenance["parts"]))


def install_from(name: str, source: str | Path, root: str | Path | None = None) -> InstallReport:
    """Install dataset ``name`` from a local copy (e.g. ``../shared/data``).

    Every part present in the copy is verified against its checksum; required parts must be
    present. Installing what is already installed, from identical files, changes nothing.
    """
    dataset = get_dataset(name)
    base = data_root(root)
    folder = _source_folder(dataset, Path(source).expanduser())
    parts: dict[str, str] = {}
    for part in dataset.parts:
        path = folder / part.path
        if not path.is_file():
            if part.required:
                raise InstallError(f"{folder} lacks {part.path}, a required part of {name}")
            continue
        parts[part.path] = verify(part, path)
    target = base / dataset.name

    def unchanged() -> InstallReport | None:
        installed = read_marker(target)
        if installed is None or installed.get("parts") != parts:
            return None
        return InstallReport(name, target, "unchanged", installed["counts"], sorted(parts))

    if (same := unchanged()) is not None:
        return same
    with staged(dataset, base) as staging:
        if (same := unchanged()) is not None:  # a concurrent install finished first
            return same
        for relative in parts:
            place(dataset.part(relative), folder / relative, staging)
        return commit(dataset, staging, base, {"parts": parts, "source": str(folder)})
