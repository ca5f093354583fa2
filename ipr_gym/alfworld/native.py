"""The native ALFWorld engine: ``logic`` for the rules, ``textgen`` for the words.

A ``NativeGame`` is the immutable, shareable part of a game file (parsed domain, problem,
grammar, entity names, cached command strings); a ``NativeEngine`` plays one episode of it.
Both wordings are played by the same code: only the grammar and domain text differ.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as TypingMapping
from dataclasses import dataclass
from typing import Any

from ipr_gym.alfworld.logic import Applicable, Fact, Logic, State
from ipr_gym.alfworld.pddl import Atom as PddlAtom
from ipr_gym.alfworld.pddl import parse_domain, parse_problem
from ipr_gym.alfworld.textgen import (
    Conditional,
    EntityInfo,
    Eval,
    Grammar,
    ListOf,
    Mapping,
    Nonterminal,
    Terminal,
    TextGenerator,
    demangle,
    parse_query,
    parse_symbols,
)

NOTHING_HAPPENS = "Nothing happens."
MEMO_SIZE = 512  # states remembered per game (then forgotten at once: memory stays flat)


class NativeGame:
    """A parsed game file, shared by every episode played on it."""

    def __init__(self, data: TypingMapping[str, Any]):
        domain = parse_domain(data["pddl_domain"])
        problem = parse_problem(data["pddl_problem"])
        self.logic = Logic(domain, problem)
        self.grammar = Grammar(data["grammar"])
        ids = sorted({arg for _, args in problem.init for arg in args})
        names = demangle(ids)
        entities = {i: EntityInfo(i, problem.objects.get(i, "object"), names[i]) for i in ids}
        self.entities = entities
        self.types = dict(problem.objects)
        self.initial = State.initial(problem, self.logic.dynamic)
        self._static_templates = {
            name: _reads_only(parse_symbols(text.template), self.logic.dynamic)
            for name, text in self.grammar.actions.items()
        }
        self._commands: dict[tuple[str, ...], str] = {}
        # a command is cached under the parameters its template mentions ("go to {r}"
        # does not depend on where the agent stands)
        self._template_params = {
            name: tuple(
                var.lstrip("?") in _mentioned(parse_symbols(self.grammar.actions[name].template))
                for var, _ in action.params
            )
            for name, action in domain.actions.items()
            if name in self.grammar.actions
        }
        # Commands and the goal depend only on the facts preconditions and the goal read,
        # when every template is cacheable: a state's admissible commands are then
        # remembered under those facts (``checked`` and the like do not count).
        self.relevant = tuple(sorted(_read_predicates(domain, problem) & self.logic.dynamic))
        cacheable = all(self._static_templates.values())
        self.memo: dict[tuple[frozenset, ...], tuple] | None = {} if cacheable else None
        self._simple_templates = {
            name: simple
            for name, text in self.grammar.actions.items()
            if (simple := _simple(parse_symbols(text.template))) is not None
        }

        self._prime_locations()

    def _prime_locations(self) -> None:
        """Ground once, at load, what the agent can do wherever it stands: the branches
        that read only the agent's location (``go to``, ``look``, ``examine``) are
        answered for every location, and their commands made, so a first visit to a
        location costs what a repeat visit does. About 30 locations per game."""
        at = self.initial.dynamic.by_predicate.get("atlocation", set())
        if len(at) != 1:
            return
        ((agent, here),) = at
        state = self.initial.copy()
        text = self.text()
        text.bind_view(state.view)  # commands cached here read only static facts
        for location in self.logic.objects_of("location"):
            state.dynamic.remove(("atlocation", (agent, here)))
            state.dynamic.add(("atlocation", (agent, location)))
            here = location
            for op in self.logic.prime(state, ("atlocation",)):
                if op.command is None and self._static_templates[op.action]:
                    self.command(op, text)

    def text(self) -> TextGenerator:
        return TextGenerator(self.grammar, self.entities, self.types, frozenset(self.logic.dynamic))

    def mapping(self, op: Applicable) -> Mapping:
        schema = self.logic.domain.actions[op.action]
        return {
            (var.lstrip("?"), kind): value
            for (var, kind), value in zip(schema.params, op.args, strict=True)
        }

    def command(self, op: Applicable, text: TextGenerator) -> str:
        if op.command is not None:
            return op.command
        used = self._template_params[op.action]
        key = (op.action, *[value for value, keep in zip(op.args, used, strict=True) if keep])
        cached = self._commands.get(key)
        if cached is not None:
            op.command = cached
            return cached
        simple = self._simple_templates.get(op.action)
        if simple is not None:  # plain "{o}" placeholders: names filled in directly
            mapping = self.mapping(op)
            names = {ph[0]: self.entities[value].name for ph, value in mapping.items()}
            command = "".join(
                names[part[1]] if isinstance(part, tuple) else part for part in simple
            )
        else:
            command = text.derive(self.grammar.actions[op.action].template, self.mapping(op))
        if self._static_templates[op.action]:
            self._commands[key] = op.command = command
        return command


def _simple(symbols: tuple) -> list[str | tuple[str, str]] | None:
    """A template of text and bare ``{x}`` placeholders as parts, else None."""
    parts: list[str | tuple[str, str]] = []
    for symbol in symbols:
        if isinstance(symbol, Terminal):
            parts.append(symbol.text)
        elif (
            isinstance(symbol, Conditional)
            and not symbol.given
            and isinstance(symbol.expression, Eval)
            and symbol.expression.expression.strip().isidentifier()
        ):
            parts.append(("name", symbol.expression.expression.strip()))
        else:
            return None
    return parts


def _read_predicates(domain: Any, problem: Any) -> set[str]:
    """Predicates any precondition or the goal mentions."""
    found: set[str] = set()

    def walk(formula: Any) -> None:
        if isinstance(formula, PddlAtom):
            found.add(formula.predicate)
        elif hasattr(formula, "parts"):
            for part in formula.parts:
                walk(part)
        elif hasattr(formula, "part"):
            walk(formula.part)
        elif hasattr(formula, "body"):
            walk(formula.body)

    for action in domain.actions.values():
        walk(action.precondition)
        for effect in action.effects:
            if effect.condition is not None:
                walk(effect.condition)
    walk(problem.goal)
    return found


def _mentioned(symbols: tuple) -> set[str]:
    """Placeholder names a template's expressions and queries refer to."""
    names: set[str] = set()
    for symbol in symbols:
        if isinstance(symbol, ListOf):
            symbol = symbol.conditional
        if isinstance(symbol, Conditional):
            if isinstance(symbol.expression, Eval):
                names |= set(re.findall(r"[A-Za-z_]\w*", symbol.expression.expression))
            if symbol.given:
                names |= {ph for _, params in parse_query(symbol.given) for ph, _ in params}
    return names


def _reads_only(symbols: tuple, dynamic: set[str]) -> bool:
    """Whether a template's text can be cached: no rules, and queries on static facts only."""
    for symbol in symbols:
        if isinstance(symbol, ListOf):
            symbol = symbol.conditional
        if isinstance(symbol, Nonterminal):
            return False
        if isinstance(symbol, Conditional):
            if isinstance(symbol.expression, Nonterminal):
                return False
            if symbol.given and any(p in dynamic for p, _ in parse_query(symbol.given)):
                return False
    return True


@dataclass(frozen=True)
class NativeState:
    """A picklable copy of what an episode changed (what a snapshot carries)."""

    truth: frozenset[Fact]  # facts of the predicates actions change
    view: frozenset[Fact]  # textworld's view of those, ``not_`` facts included
    feedback: str


class NativeEngine:
    """One episode of a ``NativeGame``."""

    def __init__(self, game: NativeGame):
        self.game = game
        self.text = game.text()
        self.state = game.initial.copy()
        self.feedback = ""
        self.admissible: list[str] = []
        self.won = False
        self._by_command: dict[str, Applicable] = {}

    def reset(self) -> str:
        self.state = self.game.initial.copy()
        self.text.bind_view(self.state.view)
        self.feedback = self.text.derive("#intro#", {})
        self._refresh()
        return self.feedback

    def step(self, command: str) -> tuple[str, bool]:
        """Returns the feedback and whether the command was admissible."""
        op = self._by_command.get(command.strip())
        if op is None:
            self.feedback = NOTHING_HAPPENS
            return self.feedback, False
        self.state.apply(self.game.logic, self.game.logic.operator(op))
        self.text.bind_view(self.state.view)
        rule = self.game.grammar.actions[op.action].feedback
        self.feedback = self.text.derive(rule, self.game.mapping(op))
        self._refresh()
        return self.feedback, True

    def _refresh(self) -> None:
        game = self.game
        key = None
        if game.memo is not None:
            by_predicate = self.state.dynamic.by_predicate
            key = tuple(frozenset(by_predicate.get(p, ())) for p in game.relevant)
            found = game.memo.get(key)
            if found is not None:
                self._by_command, self.admissible, self.won = found
                return
        by_command: dict[str, Applicable] = {}
        for op in game.logic.applicable(self.state):
            command = op.command or game.command(op, self.text)
            by_command.setdefault(command, op)
        self._by_command = by_command
        self.admissible = sorted(by_command)
        self.won = game.logic.won(self.state)
        if key is not None and game.memo is not None:
            if len(game.memo) >= MEMO_SIZE:
                game.memo.clear()
            game.memo[key] = (by_command, self.admissible, self.won)

    def save(self) -> NativeState:
        return NativeState(
            frozenset(self.state.dynamic.facts), frozenset(self.state.view.changes()), self.feedback
        )

    def load(self, saved: NativeState) -> None:
        self.state = State(self.game.initial.static, saved.truth, saved.view)
        self.text.bind_view(self.state.view)
        self.feedback = saved.feedback
        self._refresh()
