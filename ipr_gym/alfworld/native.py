"""The native ALFWorld engine: ``logic`` for the rules, ``textgen`` for the words.

A ``NativeGame`` is the immutable, shareable part of a game file (parsed domain, problem,
grammar, entity names, cached command strings); a ``NativeEngine`` plays one episode of it.
Both wordings are played by the same code: only the grammar and domain text differ.
"""

from __future__ import annotations

from collections.abc import Mapping as TypingMapping
from dataclasses import dataclass
from typing import Any

from ipr_gym.alfworld.logic import Fact, Logic, Operator, State
from ipr_gym.alfworld.pddl import parse_domain, parse_problem
from ipr_gym.alfworld.textgen import (
    Conditional,
    EntityInfo,
    Grammar,
    ListOf,
    Mapping,
    Nonterminal,
    TextGenerator,
    demangle,
    parse_query,
    parse_symbols,
)

NOTHING_HAPPENS = "Nothing happens."


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
        dynamic = {e.atom.predicate for a in domain.actions.values() for e in a.effects}
        self._static_templates = {
            name: _reads_only(parse_symbols(text.template), dynamic)
            for name, text in self.grammar.actions.items()
        }
        self._commands: dict[tuple[str, tuple[str, ...]], str] = {}

    def text(self) -> TextGenerator:
        return TextGenerator(self.grammar, self.entities, self.types)

    def mapping(self, op: Operator) -> Mapping:
        schema = self.logic.domain.actions[op.action]
        return {
            (var.lstrip("?"), kind): value
            for (var, kind), value in zip(schema.params, op.args, strict=True)
        }

    def command(self, op: Operator, text: TextGenerator) -> str:
        key = (op.action, op.args)
        cached = self._commands.get(key)
        if cached is not None:
            return cached
        command = text.derive(self.grammar.actions[op.action].template, self.mapping(op))
        if self._static_templates[op.action]:
            self._commands[key] = command
        return command


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
        self._by_command: dict[str, Operator] = {}

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
        self.state.apply(self.game.logic, op)
        self.text.bind_view(self.state.view)
        rule = self.game.grammar.actions[op.action].feedback
        self.feedback = self.text.derive(rule, self.game.mapping(op))
        self._refresh()
        return self.feedback, True

    def _refresh(self) -> None:
        by_command: dict[str, Operator] = {}
        for op in self.game.logic.operators(self.state):
            command = self.game.command(op, self.text)
            by_command.setdefault(command, op)
        self._by_command = by_command
        self.admissible = sorted(by_command)
        self.won = self.game.logic.won(self.state)

    def save(self) -> NativeState:
        return NativeState(
            frozenset(self.state.dynamic.facts), frozenset(self.state.view.changes()), self.feedback
        )

    def load(self, saved: NativeState) -> None:
        self.state = State(self.game.initial.static, saved.truth, saved.view)
        self.text.bind_view(self.state.view)
        self.feedback = saved.feedback
        self._refresh()
