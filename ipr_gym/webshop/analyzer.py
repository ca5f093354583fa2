"""The text analysis of WebShop's search index: Anserini's ``DefaultEnglishAnalyzer``.

pyserini indexes and queries WebShop's products with it: Lucene's ``StandardTokenizer``
(Unicode word boundaries, UAX #29: ``50.00``, ``3.5oz``, ``u.s.a`` and ``don't`` stay one
token, hyphens split), ``EnglishPossessiveFilter`` (a trailing ``'s`` goes), lower case,
Lucene's English stop words, Lucene's Porter stemmer. Each step is reproduced here for the text
product catalogs hold; ``tests/gym/webshop/test_search_lucene.py`` checks the tokens
against Anserini's own analyzer on every embedded product and human query.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET
STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
     "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
     "these", "they", "this", "to", "was", "will", "with")
)  # fmt: skip
MAX_TOKEN_LENGTH = 255  # StandardTokenizer splits longer tokens


# UAX #29 word-break classes (ASCII and the common Unicode members)
_MID_LETTER = ":\u00b7\u0387\u05f4\u2027\ufe13\ufe55\uff1a"
_MID_NUM_LET = ".\u2018\u2019\u2024\ufe52\uff07\uff0e'"
_MID_NUM = ",;\u037e\u0589\u060c\u060d\u066c\u07f8\u2044\ufe10\ufe14\ufe50\ufe54\uff0c\uff1b"
_IDEOGRAPHIC = "\u3040-\u309f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
# symbols Lucene 8 emits as tokens of their own (Extended_Pictographic: emoji, (c), (R), TM,
# stars, arrows...), read off Anserini's tokenizer code point by code point
_PICTOGRAPHIC = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2194-\u2199\u21a9-\u21aa\u231a-\u231b\u2328\u2388"
    "\u23cf\u23e9-\u23f3\u23f8-\u23fa\u25aa-\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u2605"
    "\u2607-\u2612\u2614-\u2685\u2690-\u2705\u2708-\u2712\u2714\u2716\u271d\u2721\u2728"
    "\u2733-\u2734\u2744\u2747\u274c\u274e\u2753-\u2755\u2757\u2763-\u2767\u2795-\u2797"
    "\u27a1\u27b0\u27bf\u2934-\u2935\u2b05-\u2b07\u2b1b-\u2b1c\u2b50\u2b55\u3030\u303d"
    "\u3297\u3299\U0001f000-\U0001f0ff\U0001f10d-\U0001f10f\U0001f12f-\U0001f149"
    "\U0001f150-\U0001f169\U0001f16c-\U0001f189\U0001f18e\U0001f191-\U0001f19a"
    "\U0001f1ad-\U0001f1e5\U0001f200-\U0001f20f\U0001f21a\U0001f22f\U0001f232-\U0001f23a"
    "\U0001f23c-\U0001f23f\U0001f249-\U0001f53d\U0001f546-\U0001f64f\U0001f680-\U0001f6ff"
    "\U0001f774-\U0001f77f\U0001f7d5-\U0001f7ff\U0001f80c-\U0001f80f\U0001f848-\U0001f84f"
    "\U0001f85a-\U0001f85f\U0001f888-\U0001f88f\U0001f8ae-\U0001f8ff\U0001f90c-\U0001f93a"
    "\U0001f93c-\U0001f945\U0001f947-\U0001faff"
)
_EMOJI = rf"[{_PICTOGRAPHIC}][\ufe0f\U0001f3fb-\U0001f3ff]*"


@functools.lru_cache(maxsize=1)
def _word_pattern() -> re.Pattern[str]:
    """A word: letters, digits and connectors ("_"), joined across one mid-letter mark
    between two letters (WB6/7) or one mid-number mark between two digits (WB11/12); an
    ideograph, kana or emoji (with its modifiers and zero-width-joined partners) is a token
    of its own. Built on first use: listing the other-number characters (superscripts,
    fractions: word characters to Python, not to Lucene) scans the Unicode table."""
    other_numbers = re.escape(
        "".join(chr(c) for c in range(0x20000) if unicodedata.category(chr(c)) == "No")
    )
    not_word = f"{_IDEOGRAPHIC}{other_numbers}"
    char = rf"(?:[\u24b6-\u24e9]|(?![{not_word}])\w)"
    letter = rf"(?:(?![{not_word}])[^\W\d_])"
    return re.compile(
        rf"{_EMOJI}(?:\u200d{_EMOJI})*|[{_IDEOGRAPHIC}]"
        rf"|{char}+(?:(?:(?<={letter})[{_MID_LETTER}{_MID_NUM_LET}](?={letter})"
        rf"|(?<=\d)[{_MID_NUM}{_MID_NUM_LET}](?=\d)){char}+)*"
    )


@functools.lru_cache(maxsize=1)
def _ascii_word_pattern() -> re.Pattern[str]:
    """``_word_pattern`` restricted to ASCII text, where it means the same and runs several
    times faster (no Unicode classes to test at every character)."""
    return re.compile(
        r"[A-Za-z0-9_]+(?:(?:(?<=[A-Za-z])[:.'](?=[A-Za-z])|(?<=[0-9])[,;.'](?=[0-9]))"
        r"[A-Za-z0-9_]+)*"
    )


_POSSESSIVE = ("'s", "'S", "\u2019s", "\u2019S", "\uff07s", "\uff07S")


def standard_tokens(text: str) -> list[str]:
    """Lucene's ``StandardTokenizer``: the words of ``text`` (punctuation dropped)."""
    pattern = _ascii_word_pattern() if text.isascii() else _word_pattern()
    words = pattern.findall(text)
    if all(len(w) <= MAX_TOKEN_LENGTH and w.strip("_") for w in words):
        return words
    tokens = []
    for word in words:
        if not word.strip("_"):  # connectors alone make no token
            continue
        for start in range(0, len(word), MAX_TOKEN_LENGTH):
            tokens.append(word[start : start + MAX_TOKEN_LENGTH])
    return tokens


class _Porter:
    """Porter's algorithm as Lucene's ``PorterStemmer`` runs it: Martin Porter's reference
    implementation, with its two departures from the paper (``bli`` -> ``ble``, ``logi`` ->
    ``log``), every doubled consonant but l, s, z undoubled after -ed/-ing, and words of one
    or two characters left alone. Characters other than a, e, i, o, u (and y after a
    vowel) count as consonants, digits included."""

    def __init__(self, word: str):
        self.b, self.k, self.j = list(word), len(word) - 1, 0

    def cons(self, i: int) -> bool:
        c = self.b[i]
        if c in "aeiou":
            return False
        if c == "y":
            return i == 0 or not self.cons(i - 1)
        return True

    def m(self) -> int:
        """The number of consonant-vowel alternations (VC) in b[0..j]."""
        n, i, j = 0, 0, self.j
        while i <= j and self.cons(i):
            i += 1
        while True:
            while i <= j and not self.cons(i):
                i += 1
            if i > j:
                return n
            while i <= j and self.cons(i):
                i += 1
            n += 1
            if i > j:
                return n

    def vowel_in_stem(self) -> bool:
        return any(not self.cons(i) for i in range(self.j + 1))

    def double_c(self, i: int) -> bool:
        return i >= 1 and self.b[i] == self.b[i - 1] and self.cons(i)

    def cvc(self, i: int) -> bool:
        return (i >= 2 and self.cons(i) and not self.cons(i - 1) and self.cons(i - 2)
                and self.b[i] not in "wxy")  # fmt: skip

    def ends(self, suffix: str) -> bool:
        n = len(suffix)
        if n > self.k + 1 or "".join(self.b[self.k - n + 1 : self.k + 1]) != suffix:
            return False
        self.j = self.k - n
        return True

    def set_to(self, text: str) -> None:
        self.b[self.j + 1 : self.k + 1] = list(text)
        self.k = self.j + len(text)

    def replace(self, text: str) -> None:
        if self.m() > 0:
            self.set_to(text)

    def first_match(self, rules: Sequence[tuple[str, str]]) -> None:
        """The first rule whose suffix the word ends with, applied when m() > 0."""
        for suffix, text in rules:
            if self.ends(suffix):
                self.replace(text)
                return

    def stem(self) -> str:
        if self.k <= 1:
            return "".join(self.b)
        self.plurals_and_participles()
        if self.ends("y") and self.vowel_in_stem():
            self.b[self.k] = "i"
        if self.k > 0:
            self.first_match(_DOUBLE_SUFFIXES.get(self.b[self.k - 1], ()))
        self.first_match(_SUFFIXES_3.get(self.b[self.k], ()))
        self.drop_suffix()
        self.final_e_and_ll()
        return "".join(self.b[: self.k + 1])

    def plurals_and_participles(self) -> None:  # the paper's step 1a and 1b
        b = self.b
        if b[self.k] == "s":
            if self.ends("sses"):
                self.k -= 2
            elif self.ends("ies"):
                self.set_to("i")
            elif b[self.k - 1] != "s":
                self.k -= 1
        if self.ends("eed"):
            if self.m() > 0:
                self.k -= 1
        elif (self.ends("ed") or self.ends("ing")) and self.vowel_in_stem():
            self.k = self.j
            if self.ends("at"):
                self.set_to("ate")
            elif self.ends("bl"):
                self.set_to("ble")
            elif self.ends("iz"):
                self.set_to("ize")
            elif self.double_c(self.k):
                if b[self.k] not in "lsz":
                    self.k -= 1
            elif self.m() == 1 and self.cvc(self.k):
                self.set_to("e")

    def drop_suffix(self) -> None:  # the paper's step 4
        if self.k == 0:
            return
        for suffix in _SUFFIXES_4.get(self.b[self.k - 1], ()):
            if self.ends(suffix):
                if suffix == "ion" and (self.j < 0 or self.b[self.j] not in "st"):
                    return
                break
        else:
            return
        if self.m() > 1:
            self.k = self.j

    def final_e_and_ll(self) -> None:  # the paper's step 5
        self.j = self.k
        if self.b[self.k] == "e":
            a = self.m()
            if a > 1 or (a == 1 and not self.cvc(self.k - 1)):
                self.k -= 1
        if self.b[self.k] == "l" and self.double_c(self.k) and self.m() > 1:
            self.k -= 1


# the paper's step 2, keyed by the second-last letter, then step 3 by the last
_DOUBLE_SUFFIXES = {
    "a": (("ational", "ate"), ("tional", "tion")),
    "c": (("enci", "ence"), ("anci", "ance")),
    "e": (("izer", "ize"),),
    "l": (("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous")),
    "o": (("ization", "ize"), ("ation", "ate"), ("ator", "ate")),
    "s": (("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous")),
    "t": (("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")),
    "g": (("logi", "log"),),
}
_SUFFIXES_3 = {
    "e": (("icate", "ic"), ("ative", ""), ("alize", "al")),
    "i": (("iciti", "ic"),),
    "l": (("ical", "ic"), ("ful", "")),
    "s": (("ness", ""),),
}
# step 4's suffixes by the second-last letter; "ou" ends -ous
_SUFFIXES_4 = {
    "a": ("al",), "c": ("ance", "ence"), "e": ("er",), "i": ("ic",), "l": ("able", "ible"),
    "n": ("ant", "ement", "ment", "ent"), "o": ("ion", "ou"), "s": ("ism",),
    "t": ("ate", "iti"), "u": ("ous",), "v": ("ive",), "z": ("ize",),
}  # fmt: skip


@functools.lru_cache(maxsize=1 << 18)
def porter_stem(word: str) -> str:
    """Lucene's ``PorterStemmer`` on one lower-cased term."""
    return _Porter(word).stem()


@functools.lru_cache(maxsize=1 << 18)
def _term(token: str) -> str | None:
    """One token's term: possessive dropped, lower-cased, stop words out, stemmed."""
    if token.endswith(_POSSESSIVE):
        token = token[:-2]
    token = token.replace("\u0130", "i").lower()  # Java lower-cases İ to i
    if not token or token in STOPWORDS:
        return None
    return porter_stem(token)


def analyze(text: str) -> list[str]:
    """The terms Anserini's default English analyzer makes of ``text``, in order."""
    return [t for t in map(_term, standard_tokens(text)) if t is not None]
