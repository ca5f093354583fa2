"""ALFWorld's game logic: which actions apply in a state and what they change.

This reproduces what textworld observes through fast-downward, the planner it delegates
to, and nothing about text:

* Preconditions are split into disjunctive branches and existential variables become
  extra operator parameters, as fast-downward normalises them.
* An operator whose every effect is already guaranteed by its own precondition is dropped
  (fast-downward's "no-op" pruning). This is why ``go to X`` is never offered for a
  receptacle at the agent's current location.
* "Add wins": a delete effect is ignored when the same atom is added under the same
  condition.
* Two views of the state are kept. ``truth`` is the planner's state, used for
  applicability and the goal. ``view`` is the fact list textworld's text generation reads:
  it starts as the problem's init facts and each effect of an applied operator is written
  into it in the planner's order, *whatever its condition*, with a deleted atom ``p``
  recorded as a ``not_p`` fact. The grammar relies on those ``not_`` facts.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from ipr_gym.alfworld.pddl import (
    ActionSchema,
    And,
    Atom,
    Domain,
    Effect,
    Exists,
    ForAll,
    Formula,
    Not,
    Or,
    Problem,
)

Fact = tuple[str, tuple[str, ...]]
Literal = tuple[bool, Atom]


# ------------------------------------------------------------------ normalisation
def _negate(formula: Formula) -> Formula:
    if isinstance(formula, Atom):
        return Not(formula)
    if isinstance(formula, Not):
        return formula.part
    if isinstance(formula, And):
        return Or(tuple(_negate(p) for p in formula.parts))
    if isinstance(formula, Or):
        return And(tuple(_negate(p) for p in formula.parts))
    if isinstance(formula, Exists):
        return ForAll(formula.params, _negate(formula.body))
    return Exists(formula.params, _negate(formula.body))


def _branches(formula: Formula, counter: itertools.count) -> list[tuple[list, list]]:
    """DNF: a list of (extra typed params, literals) branches."""
    if isinstance(formula, Atom):
        return [([], [(True, formula)])]
    if isinstance(formula, Not):
        inner = formula.part
        if isinstance(inner, Atom):
            return [([], [(False, inner)])]
        return _branches(_negate(inner), counter)
    if isinstance(formula, And):
        result: list[tuple[list, list]] = [([], [])]
        for part in formula.parts:
            result = [
                (p1 + p2, l1 + l2) for p1, l1 in result for p2, l2 in _branches(part, counter)
            ]
        return result
    if isinstance(formula, Or):
        return [b for part in formula.parts for b in _branches(part, counter)]
    if isinstance(formula, Exists):
        renamed = {var: f"{var}@{next(counter)}" for var, _ in formula.params}
        params = [(renamed[var], kind) for var, kind in formula.params]
        body = _rename(formula.body, renamed)
        return [(params + p, lits) for p, lits in _branches(body, counter)]
    raise NotImplementedError("universal preconditions are not used by ALFWorld")


def _rename(formula: Formula, names: dict[str, str]) -> Formula:
    if isinstance(formula, Atom):
        return Atom(formula.predicate, tuple(names.get(a, a) for a in formula.args))
    if isinstance(formula, Not):
        return Not(_rename(formula.part, names))
    if isinstance(formula, And):
        return And(tuple(_rename(p, names) for p in formula.parts))
    if isinstance(formula, Or):
        return Or(tuple(_rename(p, names) for p in formula.parts))
    inner = {k: v for k, v in names.items() if k not in dict(formula.params)}
    kind = type(formula)
    return kind(formula.params, _rename(formula.body, inner))  # type: ignore[call-arg]


@dataclass(frozen=True)
class Branch:
    """One disjunct of an action's precondition, with a static join order."""

    action: ActionSchema
    params: tuple[tuple[str, str], ...]  # schema params then existential ones
    positives: tuple[Atom, ...]  # in join order
    negatives: tuple[Atom, ...]
    unbound: tuple[tuple[str, str], ...]  # params no positive literal binds


def _plan(action: ActionSchema, extra: list, literals: list[Literal]) -> Branch:
    params = tuple(action.params) + tuple(extra)
    positives = [atom for positive, atom in literals if positive]
    negatives = tuple(atom for positive, atom in literals if not positive)
    ordered: list[Atom] = []
    bound: set[str] = set()
    while positives:
        # most bound arguments first, then the fewest free ones
        def score(atom: Atom) -> tuple[int, int]:
            free = sum(1 for a in atom.args if a.startswith("?") and a not in bound)
            fixed = len(atom.args) - free
            return (-fixed, free)

        best = min(positives, key=score)
        positives.remove(best)
        ordered.append(best)
        bound.update(a for a in best.args if a.startswith("?"))
    unbound = tuple((var, kind) for var, kind in params if var not in bound)
    return Branch(action, params, tuple(ordered), negatives, unbound)


# ------------------------------------------------------------------ operators
@dataclass(frozen=True)
class Operator:
    """A grounded action: its schema, its arguments, and its surviving effects."""

    action: str
    args: tuple[str, ...]  # values of the schema's own parameters
    effects: tuple[tuple[bool, Fact, Formula | None, dict[str, str]], ...]


class Logic:
    """The rules of one game: its domain and its objects' types."""

    def __init__(self, domain: Domain, problem: Problem):
        self.domain = domain
        self.problem = problem
        self.types = problem.objects
        counter = itertools.count()
        self.branches = [
            _plan(action, extra, lits)
            for action in domain.actions.values()
            for extra, lits in _branches(action.precondition, counter)
        ]
        self._objects_of_type: dict[str, list[str]] = defaultdict(list)
        for name, kind in sorted(problem.objects.items()):
            for ancestor in self._ancestors(kind):
                self._objects_of_type[ancestor].append(name)

    def _ancestors(self, kind: str) -> list[str]:
        chain = [kind]
        while kind in self.domain.supertypes:
            kind = self.domain.supertypes[kind]
            chain.append(kind)
        if "object" not in chain:
            chain.append("object")
        return chain

    def objects_of(self, kind: str) -> list[str]:
        return self._objects_of_type.get(kind, [])

    def is_a(self, name: str, kind: str) -> bool:
        return kind == "object" or kind in self._ancestors(self.types.get(name, "object"))

    # -------------------------------------------------------------- applicability
    def operators(self, state: State) -> Iterator[Operator]:
        """Every operator applicable in ``state`` (with duplicates across branches)."""
        for branch in self.branches:
            for binding in self._join(branch, state, 0, {}):
                for rest in self._free(branch.unbound, binding):
                    if any(_ground_fact(a, rest) in state.truth for a in branch.negatives):
                        continue
                    op = self._ground(branch, rest)
                    if op is not None:
                        yield op

    def _join(
        self, branch: Branch, state: State, depth: int, binding: dict[str, str]
    ) -> Iterator[dict[str, str]]:
        if depth == len(branch.positives):
            yield binding
            return
        atom = branch.positives[depth]
        args = atom.args
        key_pos = next(
            (i for i, a in enumerate(args) if not a.startswith("?") or a in binding), None
        )
        if key_pos is None:
            candidates = state.by_predicate.get(atom.predicate, ())
        else:
            value = args[key_pos]
            value = binding.get(value, value)
            candidates = state.by_argument.get((atom.predicate, key_pos, value), ())
        for fact_args in sorted(candidates):
            new = dict(binding)
            for a, v in zip(args, fact_args, strict=True):
                if a.startswith("?"):
                    known = new.get(a)
                    if known is None:
                        new[a] = v
                    elif known != v:
                        break
                elif a != v:
                    break
            else:
                yield from self._join(branch, state, depth + 1, new)

    def _free(
        self, unbound: tuple[tuple[str, str], ...], binding: dict[str, str]
    ) -> Iterator[dict[str, str]]:
        if not unbound:
            yield binding
            return
        (var, kind), rest = unbound[0], unbound[1:]
        for value in self.objects_of(kind):
            yield from self._free(rest, {**binding, var: value})

    def _ground(self, branch: Branch, binding: dict[str, str]) -> Operator | None:
        for var, kind in branch.params:
            if not self.is_a(binding[var], kind):
                return None
        pre = {(True, _ground_fact(a, binding)) for a in branch.positives}
        pre |= {(False, _ground_fact(a, binding)) for a in branch.negatives}
        adds = [(e.condition, _ground_fact(e.atom, binding)) for e in branch.action.effects if e.positive]
        kept: list[tuple[bool, Fact, Formula | None, dict[str, str]]] = []
        by_fact: dict[Fact, list] = defaultdict(list)
        for effect in branch.action.effects:
            fact = _ground_fact(effect.atom, binding)
            if not effect.positive and (effect.condition, fact) in adds:
                continue  # add wins
            by_fact[fact].append(effect)
        for fact, effects in by_fact.items():
            for positive in (True, False):  # the planner lists the added value first
                for effect in effects:
                    if effect.positive != positive or (positive, fact) in pre:
                        continue
                    kept.append((positive, fact, effect.condition, binding))
        if not kept:
            return None  # a no-op: the planner drops it
        own = tuple(binding[var] for var, _ in branch.action.params)
        return Operator(branch.action.name, own, tuple(kept))

    # -------------------------------------------------------------- goal
    def holds(self, formula: Formula, state: State, binding: dict[str, str]) -> bool:
        if isinstance(formula, Atom):
            return _ground_fact(formula, binding) in state.truth
        if isinstance(formula, Not):
            return not self.holds(formula.part, state, binding)
        if isinstance(formula, And):
            return all(self.holds(p, state, binding) for p in formula.parts)
        if isinstance(formula, Or):
            return any(self.holds(p, state, binding) for p in formula.parts)
        quantifier = any if isinstance(formula, Exists) else all
        choices = [self.objects_of(kind) for _, kind in formula.params]
        names = [var for var, _ in formula.params]
        return quantifier(
            self.holds(formula.body, state, {**binding, **dict(zip(names, values, strict=True))})
            for values in itertools.product(*choices)
        )

    def won(self, state: State) -> bool:
        return self.holds(self.problem.goal, state, {})


def _ground_fact(atom: Atom, binding: dict[str, str]) -> Fact:
    return atom.predicate, tuple(binding.get(a, a) for a in atom.args)


class State:
    """The planner's facts (``truth``, indexed for joins) and textworld's fact ``view``."""

    def __init__(self, facts: set[Fact], view: set[Fact]):
        self.truth: set[Fact] = set()
        self.by_predicate: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        self.by_argument: dict[tuple[str, int, str], set[tuple[str, ...]]] = defaultdict(set)
        for fact in facts:
            self._add(fact)
        self.view = set(view)

    @classmethod
    def initial(cls, problem: Problem) -> State:
        facts = set(problem.init)
        return cls(facts, facts)

    def copy(self) -> State:
        return State(set(self.truth), self.view)

    def _add(self, fact: Fact) -> None:
        if fact in self.truth:
            return
        self.truth.add(fact)
        predicate, args = fact
        self.by_predicate[predicate].add(args)
        for i, value in enumerate(args):
            self.by_argument[(predicate, i, value)].add(args)

    def _remove(self, fact: Fact) -> None:
        if fact not in self.truth:
            return
        self.truth.discard(fact)
        predicate, args = fact
        self.by_predicate[predicate].discard(args)
        for i, value in enumerate(args):
            self.by_argument[(predicate, i, value)].discard(args)

    def apply(self, logic: Logic, op: Operator) -> None:
        fired = [
            (positive, fact)
            for positive, fact, condition, binding in op.effects
            if condition is None or logic.holds(condition, self, binding)
        ]
        added = {fact for positive, fact in fired if positive}
        for positive, fact in fired:
            if not positive and fact not in added:
                self._remove(fact)
        for fact in added:
            self._add(fact)
        for positive, (predicate, args) in ((p, f) for p, f, _, _ in op.effects):
            if positive:
                self.view.discard(("not_" + predicate, args))
                self.view.add((predicate, args))
            else:
                self.view.discard((predicate, args))
                self.view.add(("not_" + predicate, args))
