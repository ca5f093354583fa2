"""BM25 search over the text WebShop indexes, with Lucene's ranking conventions.

WebShop searches a Lucene index (pyserini) of each product's ``search_document`` and shows
the top 50. The default here is ``bm25s`` with Anserini's BM25 parameters (k1=0.9, b=0.4,
Lucene's idf), English stop words and, when PyStemmer is installed, a stemmer: close to
Lucene's ranking, not identical (Lucene's analyzer and Porter stemmer differ in details).
Only documents sharing a term with the query are returned, ties in document order, as
Lucene does. Results are cached per query: Monte Carlo rollouts repeat the same searches.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

SEARCH_RETURN_N = 50
CACHE_SIZE = 4096


class SearchDependencyError(ImportError):
    """The default search backend needs bm25s."""


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    try:
        import Stemmer  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Stemmer.Stemmer("english").stemWords


class BM25Search:
    """``search(query) -> [asin, ...]`` over a fixed list of (asin, document) pairs."""

    def __init__(self, asins: Sequence[str], documents: Sequence[str], k: int = SEARCH_RETURN_N):
        try:
            import bm25s
        except ImportError as exc:
            raise SearchDependencyError(
                "WebShop's search needs bm25s: pip install 'ipr[webshop]'"
            ) from exc
        self._bm25s = bm25s
        self.asins = list(asins)
        self.k = k
        tokens = bm25s.tokenize(
            list(documents), stopwords="en", stemmer=_stemmer(), show_progress=False
        )
        self._vocab = tokens.vocab
        self._index = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
        self._index.index(tokens, show_progress=False)
        self._cache: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def search(self, query: str) -> tuple[str, ...]:
        hit = self._cache.get(query)
        if hit is not None:
            self._cache.move_to_end(query)
            return hit
        result = self._rank(query)
        self._cache[query] = result
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    def _rank(self, query: str) -> tuple[str, ...]:
        words = self._bm25s.tokenize(
            query, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
        )[0]
        known = [w for w in words if w in self._vocab]
        if not known:
            return ()
        scores = self._index.get_scores(known)
        matching = np.flatnonzero(scores > 0)
        order = matching[np.lexsort((matching, -scores[matching]))][: self.k]
        return tuple(self.asins[i] for i in order)
