"""WebShop's own search: a Lucene index built and searched by Anserini, as pyserini does.

WebShop indexes ``search_document`` with pyserini (Anserini's ``IndexCollection``,
``JsonCollection``, default analyzer) and searches with BM25 (k1=0.9, b=0.4). This backend
does the same with the same Java classes, so rankings are WebShop's. It needs Java (17
works with Anserini 0.14, the one pyserini 0.17 ships), ``pyjnius``, and Anserini's fat
jar: from an installed pyserini 0.17 (``pip install --no-deps pyserini==0.17.0``) or
``$IPR_ANSERINI_JAR``. Indexes are cached under the data directory by content hash.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipr_gym.data import data_root
from ipr_gym.webshop.search import CACHE_SIZE, SEARCH_RETURN_N

JAR_VAR = "IPR_ANSERINI_JAR"


class LuceneUnavailable(RuntimeError):
    """Java, pyjnius or Anserini's jar is missing."""


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
        f"(or set ${JAR_VAR}), plus pyjnius and Java"
    )


@functools.lru_cache(maxsize=1)
def _searcher_class(jar: str) -> Any:
    if shutil.which("java") is None:
        raise LuceneUnavailable("search='lucene' needs Java on PATH")
    try:
        import jnius_config  # type: ignore[import-not-found]
    except ImportError as exc:
        raise LuceneUnavailable("search='lucene' needs pyjnius: pip install pyjnius") from exc
    if not jnius_config.vm_running:
        jnius_config.add_classpath(jar)
    from jnius import autoclass  # type: ignore[import-not-found]

    return autoclass("io.anserini.search.SimpleSearcher")


def anserini_terms(text: str) -> list[str]:
    """The terms Anserini's default English analyzer makes of ``text`` (the reference for
    ``ipr_gym.webshop.analyzer``)."""
    _searcher_class(str(anserini_jar()))  # starts the JVM with the jar
    from jnius import autoclass  # type: ignore[import-not-found]

    utils = autoclass("io.anserini.analysis.AnalyzerUtils")
    analyzer = autoclass("io.anserini.analysis.DefaultEnglishAnalyzer").newDefaultInstance()
    return list(utils.analyze(analyzer, text).toArray())


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
        jar = anserini_jar()
        self.k = k
        self._searcher = _searcher_class(str(jar))(str(build_index(asins, documents, jar)))
        self._cache: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def search(self, query: str) -> tuple[str, ...]:
        hit = self._cache.get(query)
        if hit is None:
            hit = tuple(h.docid for h in self._searcher.search(query, self.k))
            self._cache[query] = hit
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(query)
        return hit
