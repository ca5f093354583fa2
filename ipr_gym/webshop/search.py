"""BM25 search over the text WebShop indexes, with Lucene's ranking conventions.

WebShop searches a Lucene index (pyserini) of each product's ``search_document`` and shows
the top 50. The default here is ``bm25s`` set up like Anserini's default: BM25 with k1=0.9,
b=0.4 and Lucene's idf, Lucene's English stop words, single-character tokens kept, Porter's
stemmer (PyStemmer). Close to Lucene's ranking, not identical (tokenizer details, Lucene's
lossy length norms): on WebShop's human queries the top result agrees 89% of the time and
the top 10 overlap 96% (``benchmarks/results/webshop.md``); ``search="lucene"`` is exact.
Only documents sharing a term with the query are returned, ties in document order, as
Lucene does. Results are cached per query: Monte Carlo rollouts repeat the same searches.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

SEARCH_RETURN_N = 50
CACHE_SIZE = 4096


class Searcher(Protocol):
    """What the engine needs of a search backend: the top asins for a query."""

    def search(self, query: str) -> tuple[str, ...]: ...


class SearchDependencyError(ImportError):
    """The default search backend needs bm25s."""


# Lucene's English stop words, which Anserini's default analyzer removes
STOPWORDS = (
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with",
)  # fmt: skip
TOKEN_PATTERN = r"(?u)\b\w+\b"


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    """Porter's stemmer (Lucene's ``PorterStemFilter``), when PyStemmer is installed."""
    try:
        import Stemmer  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Stemmer.Stemmer("porter").stemWords


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
            list(documents), token_pattern=TOKEN_PATTERN, stopwords=list(STOPWORDS),
            stemmer=_stemmer(), show_progress=False,
        )  # fmt: skip
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
            query, token_pattern=TOKEN_PATTERN, stopwords=list(STOPWORDS), stemmer=_stemmer(),
            return_ids=False, show_progress=False,
        )[0]  # fmt: skip
        known = [w for w in words if w and w in self._index.vocab_dict]
        if not known:
            return ()
        scores = self._index.get_scores(known)
        matching = np.flatnonzero(scores > 0)
        order = matching[np.lexsort((matching, -scores[matching]))][: self.k]
        return tuple(self.asins[i] for i in order)
