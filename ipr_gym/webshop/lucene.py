"""WebShop's own search: a Lucene index built and searched by Anserini, as pyserini does.

WebShop indexes ``search_document`` with pyserini (Anserini's ``IndexCollection``,
``JsonCollection``, default analyzer) and searches with BM25 (k1=0.9, b=0.4). This backend
does the same with the same Java classes, so rankings are WebShop's. The classes run in a
Java child process (``AnseriniServer.java``, launched as a source file, so a JDK is needed:
17 works with Anserini 0.14, the one pyserini 0.17 ships), never inside Python: a JVM in the
same process as torch crashed test workers. Anserini's fat jar comes from an installed
pyserini 0.17 (``pip install --no-deps pyserini==0.17.0``) or ``$IPR_ANSERINI_JAR``.
Indexes are cached under the data directory by content hash.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipr_gym.data import data_root
from ipr_gym.webshop.search import CACHE_SIZE, SEARCH_RETURN_N

JAR_VAR = "IPR_ANSERINI_JAR"
SERVER_SOURCE = Path(__file__).with_name("AnseriniServer.java")


class LuceneUnavailable(RuntimeError):
    """Java or Anserini's jar is missing, or Anserini's Java process ended."""


def anserini_jar() -> Path:
    given = os.environ.get(JAR_VAR)
    if given:
        return Path(given)
    spec = importlib.util.find_spec("pyserini")
    if spec and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            jars = sorted(Path(folder, "resources", "jars").glob("anserini-*-fatjar.jar"))
            if jars:
                return jars[-1]
    raise LuceneUnavailable(
        "search='lucene' needs Anserini's jar: pip install --no-deps pyserini==0.17.0 "
        f"(or set ${JAR_VAR}), plus a JDK (11 or newer)"
    )


class AnseriniProcess:
    """Anserini's searcher and analyzer in a Java child process (``AnseriniServer.java``),
    one request per line over its stdin/stdout: a JVM crash ends this child with a clear
    error, never the Python process. It starts on first use and stops with ``close()``, at
    interpreter exit, or when this process dies (its stdin closes)."""

    def __init__(self, jar: Path | None = None):
        self.jar = jar or anserini_jar()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        java = shutil.which("java")
        if java is None:
            raise LuceneUnavailable("search='lucene' needs Java (a JDK, 11 or newer) on PATH")
        self._stderr = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            [java, "-cp", str(self.jar), str(SERVER_SOURCE)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )  # fmt: skip
        self._proc = proc
        if self._read_line() != b"ok":
            raise self._died("did not start")
        return proc

    def _read_line(self) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout.readline().rstrip(b"\n")

    def _died(self, what: str) -> LuceneUnavailable:
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            proc.kill()
            code = proc.wait()
        tail = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            tail = self._stderr.read().decode("utf-8", "replace")[-2000:]
            self._stderr.close()
            self._stderr = None
        return LuceneUnavailable(
            f"Anserini's Java process {what} (exit code {code}); the next search starts a "
            f"new one. Its last output:\n{tail}"
        )

    def call(self, op: str, *args: str) -> list[str]:
        """One request: the answer's fields, or ``LuceneUnavailable`` if the child died."""
        line = "\t".join([op, *(base64.b64encode(a.encode()).decode() for a in args)])
        with self._lock:
            proc = self._proc if self._proc and self._proc.poll() is None else self._start()
            assert proc.stdin is not None
            try:
                proc.stdin.write(line.encode() + b"\n")
                proc.stdin.flush()
            except OSError:
                raise self._died("ended") from None
            reply = self._read_line()
            if not reply:
                raise self._died("ended")
        kind, *fields = reply.split(b"\t")
        values = [base64.b64decode(f).decode() for f in fields]
        if kind != b"ok":
            raise RuntimeError(f"Anserini refused {op} {list(args)[:2]}: {values[0]}")
        return values

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None and proc.poll() is None:
                assert proc.stdin is not None
                proc.stdin.close()  # end of input ends the server
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None


_PROCESSES: dict[int, AnseriniProcess] = {}


def anserini() -> AnseriniProcess:
    """This process's Anserini child (one for every searcher and the analyzer), stopped at
    exit; a forked process starts its own rather than share the parent's pipe."""
    process = _PROCESSES.get(os.getpid())
    if process is None:
        process = _PROCESSES[os.getpid()] = AnseriniProcess()
        atexit.register(process.close)
    return process


def anserini_terms(text: str) -> list[str]:
    """The terms Anserini's default English analyzer makes of ``text`` (the reference for
    ``ipr_gym.webshop.analyzer``)."""
    return anserini().call("terms", text)


def lucene_int_to_byte4(lengths: Sequence[int]) -> list[int]:
    """Lucene's ``SmallFloat.intToByte4`` of each length, as an unsigned byte."""
    return [int(b) for b in anserini().call("byte4", *map(str, lengths))]


def lucene_byte4_to_int(norms: Sequence[int]) -> list[int]:
    """Lucene's ``SmallFloat.byte4ToInt`` of each norm byte (0-255)."""
    return [int(n) for n in anserini().call("int4", *map(str, norms))]


def build_index(asins: Sequence[str], documents: Sequence[str], jar: Path) -> Path:
    """The Lucene index of these documents, built once and cached by content."""
    digest = hashlib.sha256()
    for asin, doc in zip(asins, documents, strict=True):
        digest.update(f"{asin}\t{doc}\n".encode())
    target = data_root() / "webshop-lucene" / digest.hexdigest()[:20]
    if (target / "done").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        docs = Path(tmp, "docs")
        docs.mkdir()
        with open(docs / "documents.jsonl", "w", encoding="utf-8") as f:
            for asin, doc in zip(asins, documents, strict=True):
                f.write(json.dumps({"id": asin, "contents": doc}) + "\n")
        index = Path(tmp, "index")
        subprocess.run(
            ["java", "-cp", str(jar), "io.anserini.index.IndexCollection",
             "-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
             "-threads", "1", "-input", str(docs), "-index", str(index),
             "-storePositions", "-storeDocvectors", "-storeRaw"],
            check=True, capture_output=True,
        )  # fmt: skip
        (index / "done").write_text("ok")
        if target.exists():
            shutil.rmtree(target)
        index.rename(target)
    return target


class LuceneSearch:
    """``search(query) -> [asin, ...]``, WebShop's top 50 from Lucene."""

    def __init__(self, asins: Sequence[str], documents: Sequence[str], k: int = SEARCH_RETURN_N):
        self.k = k
        self._process = anserini()
        self._index = str(build_index(asins, documents, self._process.jar))
        self._process.call("open", self._index)
        self._cache: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def search(self, query: str) -> tuple[str, ...]:
        hit = self._cache.get(query)
        if hit is None:
            hit = tuple(self._process.call("search", self._index, str(self.k), query))
            self._cache[query] = hit
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(query)
        return hit
