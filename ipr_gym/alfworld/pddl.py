"""Reading ALFWorld's PDDL: the domain's actions and a problem's objects, facts and goal.

Names are lower-cased, as fast-downward (the planner textworld uses) does, so entity ids
match the reference engine's. Formulas are small immutable trees evaluated by ``logic``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

SExpr = Union[str, list["SExpr"]]  # noqa: UP007 - a recursive alias needs Union

_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def parse_sexpr(text: str) -> SExpr:
    """One s-expression; ``;`` starts a comment."""
    text = re.sub(r";[^\n]*", "", text)
    stack: list[list[SExpr]] = [[]]
    for token in _TOKEN.findall(text):
        if token == "(":
            stack.append([])
        elif token == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(token.lower())
    if len(stack) != 1 or not stack[0]:
        raise ValueError("unbalanced PDDL")
    return stack[0][0]


# ------------------------------------------------------------------ formulas
@dataclass(frozen=True)
class Atom:
    predicate: str
    args: tuple[str, ...]  # variables start with "?"


@dataclass(frozen=True)
class Not:
    part: Formula


@dataclass(frozen=True)
class And:
    parts: tuple[Formula, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Formula, ...]


@dataclass(frozen=True)
class Exists:
    params: tuple[tuple[str, str], ...]  # (variable, type)
    body: Formula


@dataclass(frozen=True)
class ForAll:
    params: tuple[tuple[str, str], ...]
    body: Formula


Formula = Atom | Not | And | Or | Exists | ForAll


@dataclass(frozen=True)
class Effect:
    """A literal set true (``positive``) or false, when ``condition`` held before."""

    atom: Atom
    positive: bool
    condition: Formula | None = None


@dataclass(frozen=True)
class ActionSchema:
    name: str
    params: tuple[tuple[str, str], ...]
    precondition: Formula
    effects: tuple[Effect, ...]


@dataclass(frozen=True)
class Domain:
    actions: dict[str, ActionSchema]
    supertypes: dict[str, str]


@dataclass(frozen=True)
class Problem:
    objects: dict[str, str]  # name -> type
    init: tuple[tuple[str, tuple[str, ...]], ...]
    goal: Formula


def _typed_list(items: list[SExpr]) -> list[tuple[str, str]]:
    """``?a ?b - t ?c - u`` -> [(?a, t), (?b, t), (?c, u)]; untyped items are ``object``."""
    out: list[tuple[str, str]] = []
    pending: list[str] = []
    i = 0
    while i < len(items):
        item = items[i]
        assert isinstance(item, str)
        if item == "-":
            kind = items[i + 1]
            assert isinstance(kind, str)
            out.extend((name, kind) for name in pending)
            pending = []
            i += 2
        else:
            pending.append(item)
            i += 1
    out.extend((name, "object") for name in pending)
    return out


def parse_formula(expr: SExpr) -> Formula:
    if isinstance(expr, str):
        raise ValueError(f"expected a formula, got {expr!r}")
    if not expr:
        return And(())
    head = expr[0]
    if head == "and":
        return And(tuple(parse_formula(e) for e in expr[1:]))
    if head == "or":
        return Or(tuple(parse_formula(e) for e in expr[1:]))
    if head == "not":
        return Not(parse_formula(expr[1]))
    if head in ("exists", "forall"):
        params = expr[1]
        assert isinstance(params, list)
        # Tokens are kept as written: ALFWorld's ``(?l - location, ?r - receptacle)`` gives
        # ?l the type "location," which, as in fast-downward, no object has.
        typed = tuple(_typed_list(params))
        body = parse_formula(expr[2])
        return Exists(typed, body) if head == "exists" else ForAll(typed, body)
    if head == "imply":
        return Or((Not(parse_formula(expr[1])), parse_formula(expr[2])))
    assert isinstance(head, str)
    return Atom(head, tuple(str(a) for a in expr[1:]))


def _parse_effects(expr: SExpr, condition: Formula | None = None) -> list[Effect]:
    if isinstance(expr, str) or not expr:
        return []
    head = expr[0]
    if head == "and":
        return [e for part in expr[1:] for e in _parse_effects(part, condition)]
    if head in ("increase", "decrease", "assign"):
        return []  # action costs: no effect on the game
    if head == "when":
        inner = parse_formula(expr[1])
        return _parse_effects(expr[2], inner if condition is None else And((condition, inner)))
    if head == "not":
        atom = parse_formula(expr[1])
        assert isinstance(atom, Atom)
        return [Effect(atom, False, condition)]
    if head == "forall":
        raise NotImplementedError("universal effects are not used by ALFWorld")
    atom = parse_formula(expr)
    assert isinstance(atom, Atom)
    return [Effect(atom, True, condition)]


def parse_domain(text: str) -> Domain:
    tree = parse_sexpr(text)
    assert isinstance(tree, list)
    actions: dict[str, ActionSchema] = {}
    supertypes: dict[str, str] = {}
    for section in tree[2:]:
        if not isinstance(section, list) or not section:
            continue
        if section[0] == ":types":
            for name, parent in _typed_list(section[1:]):
                if name != parent:
                    supertypes[name] = parent
        if section[0] != ":action":
            continue
        action_name = section[1]
        assert isinstance(action_name, str)
        fields: dict[str, SExpr] = {}
        for i in range(2, len(section) - 1, 2):
            key = section[i]
            assert isinstance(key, str)
            fields[key] = section[i + 1]
        raw_params = fields.get(":parameters", [])
        assert isinstance(raw_params, list)
        actions[action_name] = ActionSchema(
            name=action_name,
            params=tuple(_typed_list(raw_params)),
            precondition=parse_formula(fields.get(":precondition", [])),
            effects=tuple(_parse_effects(fields.get(":effect", []))),
        )
    return Domain(actions, supertypes)


def parse_problem(text: str) -> Problem:
    tree = parse_sexpr(text)
    assert isinstance(tree, list)
    objects: dict[str, str] = {}
    init: list[tuple[str, tuple[str, ...]]] = []
    goal: Formula = And(())
    for section in tree[2:]:
        if not isinstance(section, list) or not section:
            continue
        if section[0] == ":objects":
            objects.update(_typed_list(section[1:]))
        elif section[0] == ":init":
            for fact in section[1:]:
                if isinstance(fact, list) and fact and fact[0] != "=":
                    init.append((str(fact[0]), tuple(str(a) for a in fact[1:])))
        elif section[0] == ":goal":
            goal = parse_formula(section[1])
    return Problem(objects, tuple(init), goal)
