"""ALFWorld's text: the game file's grammar, derived the way textworld derives it.

A game file carries a context-sensitive grammar (``#symbol#`` rules chosen by the first
alternative whose condition matches, ``{expression | query}`` expanded once per query
match, ``[...]`` joined as an English list) and, per action, a command template and a
feedback rule. Queries run over the fact *view* of ``logic.State``; matches come in the
order textworld finds them (facts sorted by their arguments, distinct placeholders bound
to distinct entities). Entity names are ALFWorld's demangled ids ("desk 2").
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from collections.abc import Mapping as TypingMapping
from dataclasses import dataclass
from functools import cache
from typing import Any

Placeholder = tuple[str, str]  # (name, type)
Mapping = dict[Placeholder, str]  # placeholder -> entity id


# ------------------------------------------------------------------ entities
@dataclass
class EntityInfo:
    """What a grammar expression can read of an entity (``o.name``, ``o.indefinite``)."""

    id: str
    type: str
    name: str
    definite: str = "the"
    indefinite: str = "a"

    def __str__(self) -> str:
        return self.name


def demangle(ids: list[str]) -> dict[str, str]:
    """ALFWorld's display names: ``desk_bar_..`` -> ``desk 2``.

    Instances of a kind are numbered by sorted id, the first id getting the highest number;
    a kind containing "basin" keeps it ("sinkbasin"); ids with no instance part get no
    number (and keep the trailing space ALFWorld gives them).
    """
    ordered = sorted(ids)
    counts: Counter[str] = Counter()
    for entity in ordered:
        parts = entity.split("_bar_", 1)
        if len(parts) > 1:
            counts[parts[0] + ("basin" if "basin" in entity else "")] += 1
    numbers = {kind: list(range(1, n + 1)) for kind, n in counts.items()}
    names = {}
    for entity in ordered:
        text = entity
        for code, char in (("_bar_", "|"), ("_minus_", "-"), ("_plus_", "+"), ("_dot_", ".")):
            text = text.replace(code, char)
        text = text.replace("_comma_", ",")
        parts = text.split("|", 1)
        if len(parts) == 1:
            names[entity] = f"{text} "
        else:
            kind = parts[0] + ("basin" if "basin" in entity else "")
            names[entity] = f"{kind} {numbers[kind].pop()}"
    return names


# ------------------------------------------------------------------ symbols
@dataclass(frozen=True)
class Terminal:
    text: str


@dataclass(frozen=True)
class Nonterminal:
    name: str


@dataclass(frozen=True)
class Eval:
    expression: str


@dataclass(frozen=True)
class Conditional:
    expression: Nonterminal | Eval
    given: str | None


@dataclass(frozen=True)
class ListOf:
    conditional: Conditional


SymbolNode = Terminal | Nonterminal | Eval | Conditional | ListOf

_TAG = re.compile(r"[\w()/!<>\-\s,.]+")
_GIVEN = re.compile(r"[^;|{}\n\[\]#]+")
_STATEMENT = re.compile(r"[^|\[\]{}\n<>]+")
_LITERAL = re.compile(r'[^;|"<>\[\]#{}]*')
_BAR = re.compile(r"\s*\|\s*")


_TABS = re.compile(r"[\t]+")
_EOL_COMMENT = re.compile(r"(//.*|\s*)\n?")


def _skip_ignored(text: str, pos: int) -> int:
    """What textworld's parser skips before a symbol: tabs, and at the start of a line a
    blank run or a ``//`` comment (its ``@@eol_comments``)."""
    while True:
        start = pos
        found = _TABS.match(text, pos)
        if found:
            pos = found.end()
        if pos == 0 or text[pos - 1] == "\n":
            found = _EOL_COMMENT.match(text, pos)
            if found:
                pos = found.end()
        if pos == start:
            return pos


@cache
def parse_symbols(text: str) -> tuple[SymbolNode, ...]:
    """Parse a rule's right-hand side (textworld's ``textgen.ebnf``).

    As there, parsing stops silently at a character that cannot start a symbol (a stray
    ``}`` in one of ALFWorld's unused rules).
    """
    symbols: list[SymbolNode] = []
    pos = 0

    def expect(char: str) -> None:
        nonlocal pos
        if not text.startswith(char, pos):
            raise ValueError(f"expected {char!r} at {pos} in {text!r}")
        pos += 1

    def match(pattern: re.Pattern[str]) -> str:
        nonlocal pos
        found = pattern.match(text, pos)
        if not found:
            raise ValueError(f"cannot parse {text[pos : pos + 20]!r} in {text!r}")
        pos = found.end()
        return found.group()

    def conditional() -> Conditional:
        nonlocal pos
        expect("{")
        if text.startswith("#", pos):
            pos += 1
            expression: Nonterminal | Eval = Nonterminal(match(_TAG))
            expect("#")
        else:
            expression = Eval(match(_STATEMENT))
        given = None
        bar = _BAR.match(text, pos)
        if bar:
            pos = bar.end()
            given = match(_GIVEN)
        expect("}")
        return Conditional(expression, given)

    while pos < len(text):
        pos = _skip_ignored(text, pos)
        if pos >= len(text):
            break
        char = text[pos]
        if char == "[":
            pos += 1
            symbols.append(ListOf(conditional()))
            expect("]")
        elif char == "{":
            symbols.append(conditional())
        elif char == "#":
            pos += 1
            symbols.append(Nonterminal(match(_TAG)))
            expect("#")
        else:
            if char == '"':
                pos += 1
                literal = match(_LITERAL)
                expect('"')
            else:
                literal = match(_LITERAL)
                if not literal:
                    break  # like textworld's parser, ignore what cannot start a symbol
            symbols.append(Terminal(literal.replace("\\n", "\n")))
    return tuple(symbols)


@cache
def parse_query(text: str) -> tuple[tuple[str, tuple[Placeholder, ...]], ...]:
    """``openable(r:receptacle) & opened(r:receptacle)`` -> predicates with placeholders."""
    predicates = []
    for part in text.split("&"):
        found = re.fullmatch(r"\s*(!?[\w/]+)\s*\((.*)\)\s*", part)
        if not found:
            raise ValueError(f"cannot parse query {text!r}")
        params = []
        for item in found.group(2).split(","):
            if not item.strip():
                continue
            name, _, kind = item.partition(":")
            params.append((name.strip(), kind.strip() or name.strip()))
        predicates.append((found.group(1), tuple(params)))
    return tuple(predicates)


@cache
def _compile(expression: str) -> Callable[[dict[str, Any]], Any]:
    tree = ast.parse(expression.strip(), mode="eval").body

    def build(node: ast.expr) -> Callable[[dict[str, Any]], Any]:
        if isinstance(node, ast.Name):
            name = node.id
            return lambda env: env[name]
        if isinstance(node, ast.Attribute):
            inner, attr = build(node.value), node.attr
            return lambda env: getattr(inner(env), attr)
        if isinstance(node, ast.Constant):
            value = node.value
            return lambda env: value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = build(node.left), build(node.right)
            return lambda env: left(env) + right(env)
        if isinstance(node, ast.BoolOp):
            parts = [build(v) for v in node.values]
            if isinstance(node.op, ast.Or):

                def either(env: dict[str, Any]) -> Any:
                    value = None
                    for part in parts:
                        value = part(env)
                        if value:
                            return value
                    return value

                return either

            def both(env: dict[str, Any]) -> Any:
                value = None
                for part in parts:
                    value = part(env)
                    if not value:
                        return value
                return value

            return both
        raise ValueError(f"unsupported grammar expression {expression!r}")

    return build(tree)


# ------------------------------------------------------------------ the grammar
@dataclass(frozen=True)
class Rule:
    condition: str
    rhs: tuple[SymbolNode, ...]


@dataclass(frozen=True)
class ActionText:
    template: str
    feedback: str


class Grammar:
    """The rules and action texts of one game file's ``grammar`` entry."""

    def __init__(self, source: str):
        rules: dict[str, Any] = {}
        self.actions: dict[str, ActionText] = {}
        for kind, name, body in _blocks(source):
            if kind == "grammar":
                rules.update(json.loads(body))
            else:
                template = body["template"]
                feedback = body["feedback"]
                self.actions[name.lower()] = ActionText(template, feedback)
                if "grammar" in body:
                    lines = body["grammar"].split("\n")
                    kept = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
                    rules.update(json.loads(kept))
        self.rules = {
            name: [Rule(alt.get("condition", ""), parse_symbols(alt["rhs"])) for alt in alts]
            for name, alts in rules.items()
        }


def _blocks(source: str) -> Iterator[tuple[str, str, Any]]:
    """The top-level parts of a grammar entry: ``grammar :: \"\"\"json\"\"\";`` blocks and
    ``action NAME { template :: "..."; feedback :: "..."; grammar :: \"\"\"...\"\"\"; }``."""
    token = re.compile(r'\s+|#[^\n]*|"""(?:.|\n)*?"""|"[^"]*"|::|[{};]|[\w/-]+')
    tokens = [t for t in token.findall(source) if t.strip() and not t.startswith("#")]
    i = 0
    while i < len(tokens):
        if tokens[i] == "grammar":
            yield "grammar", "", textwrap.dedent(tokens[i + 2][3:-3])
            i += 4
        elif tokens[i] == "action":
            name = tokens[i + 1]
            fields: dict[str, str] = {}
            i += 3
            while tokens[i] != "}":
                key, value = tokens[i], tokens[i + 2]
                fields[key] = (
                    textwrap.dedent(value[3:-3]) if value.startswith('"""') else value[1:-1]
                )
                i += 4
            yield "action", name, fields
            i += 1
        else:
            raise ValueError(f"unexpected {tokens[i]!r} in grammar")


# ------------------------------------------------------------------ deriving text
class TextGenerator:
    """Derives text from a grammar over a fact view, as textworld's CSG does."""

    def __init__(
        self,
        grammar: Grammar,
        entities: dict[str, EntityInfo],
        types: dict[str, str],
        changing: frozenset[str] = frozenset(),
    ):
        """``changing``: the predicates actions change; the sorted fact lists of the others
        are kept from one view to the next (``not_`` facts always change)."""
        self.grammar = grammar
        self.entities = entities
        self.types = types
        self.changing = changing
        self._view: TypingMapping[str, set[tuple[str, ...]]] = {}
        self._index: dict[Any, list[tuple[str, ...]]] = {}  # changing predicates, this view
        self._kept: dict[Any, list[tuple[str, ...]]] = {}  # the others, for good

    def bind_view(self, view: TypingMapping[str, set[tuple[str, ...]]]) -> None:
        """Set the facts (by predicate) that queries read; sorted lists are made lazily."""
        self._view = view
        self._index = {}

    def _cache(self, predicate: str) -> dict[Any, list[tuple[str, ...]]]:
        if predicate in self.changing or predicate.startswith("not_"):
            return self._index
        return self._kept

    def _facts(self, predicate: str) -> list[tuple[str, ...]]:
        cache = self._cache(predicate)
        found = cache.get(predicate)
        if found is None:
            found = cache[predicate] = sorted(self._view.get(predicate, ()))
        return found

    def _facts_with(self, predicate: str, pos: int, value: str) -> list[tuple[str, ...]]:
        cache = self._cache(predicate)
        key = (predicate, pos, value)
        found = cache.get(key)
        if found is None:
            found = cache[key] = [
                args for args in self._facts(predicate) if len(args) > pos and args[pos] == value
            ]
        return found

    def assignments(self, query: str, mapping: Mapping) -> Iterator[Mapping]:
        """textworld's ``State.all_assignments`` for a conjunctive query."""
        predicates = parse_query(query)
        used = set(mapping.values())
        current = dict(mapping)
        yield from self._assign(predicates, 0, current, used)

    def _assign(self, predicates, depth, mapping, used) -> Iterator[Mapping]:
        if depth == len(predicates):
            yield dict(mapping)
            return
        name, params = predicates[depth]
        for pos, ph in enumerate(params):  # facts sharing a bound argument, in sorted order
            value = mapping.get(ph)
            if value is not None:
                candidates = self._facts_with(name, pos, value)
                break
        else:
            candidates = self._facts(name)
        for args in candidates:
            if len(args) != len(params):
                continue
            added = []
            ok = True
            for (ph_name, ph_type), value in zip(params, args, strict=True):
                ph = (ph_name, ph_type)
                if not self._fits(value, ph_type):
                    ok = False
                    break
                existing = mapping.get(ph)
                if existing is None:
                    if value in used:
                        ok = False
                        break
                    mapping[ph] = value
                    used.add(value)
                    added.append(ph)
                elif existing != value:
                    ok = False
                    break
            if ok:
                yield from self._assign(predicates, depth + 1, mapping, used)
            for ph in added:
                used.discard(mapping.pop(ph))

    def _fits(self, entity: str, kind: str) -> bool:
        return kind == "object" or self.types.get(entity) == kind

    def derive(self, start: str, mapping: Mapping) -> str:
        """The text of ``start`` (a rule body such as ``#look.feedback#``) in ``mapping``."""
        stack: list[tuple[SymbolNode, Mapping]] = [
            (s, mapping) for s in reversed(parse_symbols(start))
        ]
        out: list[str] = []
        while stack:
            symbol, context = stack.pop()
            if isinstance(symbol, Terminal):
                out.append(symbol.text)
            elif isinstance(symbol, Nonterminal):
                rhs = self._choose(symbol.name, context)
                stack.extend((s, context) for s in reversed(rhs))
            elif isinstance(symbol, Eval):
                out.append(str(self._eval(symbol.expression, context)))
            elif isinstance(symbol, Conditional):
                stack.extend(
                    (symbol.expression, c) for c in reversed(self._contexts(symbol, context))
                )
            else:
                items = [
                    (symbol.conditional.expression, c)
                    for c in self._contexts(symbol.conditional, context)
                ]
                stack.extend(reversed(self._english_list(items, context)))
        return "".join(out)

    def _contexts(self, conditional: Conditional, context: Mapping) -> list[Mapping]:
        if not conditional.given:
            return [context]
        return list(self.assignments(conditional.given, context))

    def _english_list(self, items: list, context: Mapping) -> list:
        if not items:
            return [(Nonterminal("list_empty"), context)]
        if len(items) == 1:
            return items
        separated: list = []
        for item in items[:-1]:
            separated += [item, (Nonterminal("list_separator"), context)]
        separated[-1] = (Nonterminal("list_last_separator"), context)
        return [*separated, items[-1]]

    def _choose(self, name: str, context: Mapping) -> tuple[SymbolNode, ...]:
        rules = self.grammar.rules.get(name)
        if not rules:
            raise KeyError(f"Can't find symbol '#{name}#' in the set of production rules.")
        for rule in rules:
            if (
                not rule.condition
                or next(self.assignments(rule.condition, context), None) is not None
            ):
                return rule.rhs
        raise ValueError(f"no rule of #{name}# applies")

    def _eval(self, expression: str, context: Mapping) -> Any:
        env = {ph[0]: self.entities[value] for ph, value in context.items()}
        return _compile(expression)(env)
