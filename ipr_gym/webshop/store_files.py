"""A catalog file's store, built once into the data directory and memory-mapped after.

The directory is keyed by the catalog's files (resolved paths). Its ``meta.json`` records
each source's size, modification time and SHA-256, the store's format and the analyzer's
digest (a changed tokenizer changes every posting), and every array file's size. A store
is opened only when all of these match: a source whose size or time changed is hashed
again and rebuilt only if its content changed; a missing, partial or truncated file means
a rebuild, never a read. Building streams the products (one record at a time), reports
progress on stderr, writes into a fresh directory and renames it into place, under a file
lock, so concurrent processes build once and a reader never sees half a store. Every
process then maps the same files: a pool of N workers shares one copy in the page cache.
A build first removes the stores of catalog files that no longer exist.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import mmap
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ipr_gym.data.paths import data_root
from ipr_gym.webshop import analyzer
from ipr_gym.webshop.catalog import Product
from ipr_gym.webshop.store import STORE_ARRAYS, CatalogStore, build

FORMAT = 3
ANALYZER_DIGEST = hashlib.sha256(inspect.getsource(analyzer).encode()).hexdigest()[:16]
META = "meta.json"


def store_dir(sources: Iterable[Path], data_dir: str | os.PathLike[str] | None) -> Path:
    """Where the store of these catalog files lives in the data directory."""
    key = hashlib.sha256("\n".join(str(Path(s).resolve()) for s in sources).encode())
    return data_root(data_dir) / "index" / "webshop" / key.hexdigest()[:24]


def open_store(
    sources: list[Path],
    make_products: Callable[[], Iterable[Product]],
    data_dir: str | os.PathLike[str] | None = None,
    name: str = "catalog",
) -> CatalogStore:
    """The store of ``sources`` (the products file first, then its companions), built from
    ``make_products()`` when none matches them."""
    folder = store_dir(sources, data_dir)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder.with_suffix(".lock")):
        meta = _valid_meta(folder, sources)
        if meta is None:
            _prune_orphans(folder.parent)
            _build(folder, sources, make_products())
            meta = _valid_meta(folder, sources)
            if meta is None:
                raise RuntimeError(
                    f"the catalog files {[str(s) for s in sources]} changed while their store "
                    f"was being built in {folder}; open the catalog again"
                )
        arrays = {k: _map(folder, k) for k in STORE_ARRAYS}  # mapped before any rebuild
    return CatalogStore(arrays, meta, name)


RANDOM_ACCESS = ("records", "asins", "asin_order", "id_rank")


def _map(folder: Path, name: str) -> np.ndarray:
    """The file mapped read-only, as a plain array view (``np.memmap``'s Python-level
    indexing costs microseconds per access, which a search makes thousands of). Files read
    a few bytes at a time are advised random access, so a read does not pull the pages
    around it into the process."""
    if name == "records":
        mapped = np.memmap(folder / "records.bin", dtype=np.uint8, mode="r")
    else:
        mapped = np.load(folder / f"{name}.npy", mmap_mode="r")
    if name in RANDOM_ACCESS and hasattr(mmap, "MADV_RANDOM"):
        mapped._mmap.madvise(mmap.MADV_RANDOM)  # type: ignore[attr-defined]
    return mapped.view(np.ndarray)


def _file_name(name: str) -> str:
    return "records.bin" if name == "records" else f"{name}.npy"


def _source_facts(path: Path, digest: bool) -> dict[str, Any]:
    stat = path.stat()
    facts: dict[str, Any] = {"path": str(path.resolve()), "size": stat.st_size,
                             "mtime_ns": stat.st_mtime_ns}  # fmt: skip
    if digest:
        facts["sha256"] = _sha256(path)
    return facts


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _valid_meta(folder: Path, sources: list[Path]) -> dict[str, Any] | None:
    """The store's meta if every check passes (see the module docstring), else None."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT or meta.get("analyzer") != ANALYZER_DIGEST:
        return None
    recorded = meta.get("sources", [])
    if len(recorded) != len(sources):
        return None
    touched = False
    for path, facts in zip(sources, recorded, strict=True):
        now = _source_facts(path, digest=False)
        if now["path"] != facts.get("path"):
            return None
        if (now["size"], now["mtime_ns"]) != (facts.get("size"), facts.get("mtime_ns")):
            if now["size"] != facts.get("size") or _sha256(path) != facts.get("sha256"):
                return None
            facts["mtime_ns"] = now["mtime_ns"]  # same content, touched
            touched = True
    for name, size in meta.get("files", {}).items():
        try:
            if (folder / name).stat().st_size != size:
                return None
        except OSError:
            return None
    if set(meta.get("files", {})) != {_file_name(k) for k in STORE_ARRAYS}:
        return None
    if touched:
        _write_json(folder / META, meta)
    return meta


def _build(folder: Path, sources: list[Path], products: Iterable[Product]) -> None:
    facts = [_source_facts(s, digest=True) for s in sources]  # what is about to be read
    staging = folder.with_name(f"{folder.name}.building-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        progress = _Progress(f"building the WebShop catalog store for {sources[0].name}")
        with open(staging / "records.bin", "wb") as records:
            arrays, meta = build(products, records, progress)
        progress.done()
        for name, values in arrays.items():
            np.save(staging / f"{name}.npy", values)
        meta.update(
            build=uuid.uuid4().hex,
            format=FORMAT,
            analyzer=ANALYZER_DIGEST,
            sources=facts,
            files={_file_name(k): (staging / _file_name(k)).stat().st_size for k in STORE_ARRAYS},
        )
        _write_json(staging / META, meta)  # last: a store without it is never read
        if folder.exists():
            old = folder.with_name(f"{folder.name}.old-{uuid.uuid4().hex[:8]}")
            folder.rename(old)  # processes that mapped it keep their open files
            shutil.rmtree(old, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _prune_orphans(parent: Path) -> None:
    """Remove the stores of catalog files that no longer exist (a test's temporary catalog,
    a deleted download), so the data directory does not fill with them."""
    for meta_file in parent.glob("*/" + META):
        try:
            sources = json.loads(meta_file.read_text(encoding="utf-8"))["sources"]
            gone = not all(Path(s["path"]).exists() for s in sources)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if gone:
            shutil.rmtree(meta_file.parent, ignore_errors=True)


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class _Progress:
    """A line on stderr every few seconds while a store builds (products, rate)."""

    def __init__(self, what: str, every: float = 5.0):
        self.what, self.every = what, every
        self.start = self.last = time.monotonic()
        self.count = 0

    def __call__(self, count: int) -> None:
        self.count = count
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            rate = count / (now - self.start)
            print(f"{self.what}: {count:,} products ({rate:,.0f}/s)", file=sys.stderr)

    def done(self) -> None:
        seconds = time.monotonic() - self.start
        if seconds >= self.every:
            print(f"{self.what}: {self.count:,} products in {seconds:.0f} s", file=sys.stderr)
