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
from collections.abc import Iterable, Iterator
from collections.abc import Mapping as TypingMapping
from dataclasses import dataclass
from typing import Any

from ipr_gym.alfworld.pddl import (
    ActionSchema,
    And,
    Atom,
    Domain,
    Exists,
    ForAll,
    Formula,
    Not,
    Or,
    Problem,
)

Fact = tuple[str, tuple[str, ...]]
_OBJECT = frozenset({"object"})
_MISSING: Any = object()
BRANCH_MEMO_SIZE = 256  # answers remembered per branch
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
class JoinStep:
    """Match one positive literal: look facts up by one argument, check the others."""

    predicate: str
    static: bool  # no action changes this predicate
    key: tuple[int, str, bool] | None  # (position, variable or constant, is_variable)
    checks: tuple[tuple[int, str, bool], ...]  # must equal a bound variable / a constant
    binds: tuple[tuple[int, str], ...]  # variables first bound here


@dataclass(frozen=True)
class Branch:
    """One disjunct of a precondition (or of the goal), compiled into a join plan."""

    action: ActionSchema | None
    params: tuple[tuple[str, str], ...]  # schema params then existential ones
    positives: tuple[Atom, ...]
    negatives: tuple[Atom, ...]
    steps: tuple[JoinStep, ...]
    unbound: tuple[tuple[str, str], ...]  # params no positive literal binds
    arity: int  # how many of ``params`` are the action's own
    reads: tuple[str, ...]  # the changing predicates its literals read
    # per effect: polarity, arguments, same-polarity precondition literals of its predicate,
    # and (for deletes) adds of the same atom pattern under the same condition
    effect_checks: tuple[tuple[bool, tuple[str, ...], tuple, tuple], ...]


def _plan(
    action: ActionSchema | None,
    extra: list,
    literals: list[Literal],
    sizes: dict[str, int],
    dynamic: set[str],
) -> Branch:
    """Order the positive literals cheapest first (by fact counts of the initial state, an
    argument already bound dividing the cost) and compile each into a ``JoinStep``."""
    params = (tuple(action.params) if action else ()) + tuple(extra)
    positives = [atom for positive, atom in literals if positive and atom.predicate != "="]
    if any(positive and atom.predicate == "=" for positive, atom in literals):
        raise NotImplementedError("positive equality is not used by ALFWorld")
    negatives = tuple(atom for positive, atom in literals if not positive)
    remaining = list(positives)
    bound: set[str] = set()
    steps = []
    while remaining:

        def cost(atom: Atom, bound: set[str] = bound) -> tuple[float, int]:
            fixed = sum(1 for a in atom.args if not a.startswith("?") or a in bound)
            return (sizes.get(atom.predicate, 0) / (1 + 20 * fixed), -fixed)

        atom = min(remaining, key=cost)
        remaining.remove(atom)
        key = None
        checks, binds = [], []
        seen: set[str] = set()
        for pos, arg in enumerate(atom.args):
            is_var = arg.startswith("?")
            known = not is_var or arg in bound or arg in seen
            if known and key is None and (not is_var or arg in bound):
                key = (pos, arg, is_var)
            elif known:
                checks.append((pos, arg, is_var))
            else:
                binds.append((pos, arg))
                seen.add(arg)
        static = atom.predicate not in dynamic
        steps.append(JoinStep(atom.predicate, static, key, tuple(checks), tuple(binds)))
        bound |= seen
    unbound = tuple((var, kind) for var, kind in params if var not in bound)
    checks_by_effect = []
    for effect in action.effects if action else ():
        same_in_pre = tuple(
            atom.args
            for positive, atom in literals
            if positive == effect.positive and atom.predicate == effect.atom.predicate
        )
        same_adds = tuple(
            other.atom.args
            for other in action.effects  # type: ignore[union-attr]
            if other.positive
            and other.atom.predicate == effect.atom.predicate
            and other.condition == effect.condition
        )
        checks_by_effect.append((effect.positive, effect.atom.args, same_in_pre, same_adds))
    arity = len(action.params) if action else 0
    reads = tuple(sorted({atom.predicate for _, atom in literals} & dynamic))
    return Branch(
        action,
        params,
        tuple(positives),
        negatives,
        tuple(steps),
        unbound,
        arity,
        reads,
        tuple(checks_by_effect),
    )


# ------------------------------------------------------------------ operators
class Applicable:
    """An applicable operator before grounding: its action, own arguments and cache key,
    and (filled in by the text side, where it can be cached) its command."""

    __slots__ = ("action", "args", "command", "key")

    def __init__(self, action: str, args: tuple[str, ...], key: tuple[Any, ...]):
        self.action = action
        self.args = args
        self.key = key
        self.command: str | None = None


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
        self.dynamic = {e.atom.predicate for a in domain.actions.values() for e in a.effects}
        sizes: dict[str, int] = defaultdict(int)
        for predicate, _ in problem.init:
            sizes[predicate] += 1
        self._objects_of_type: dict[str, list[str]] = defaultdict(list)
        self._kinds: dict[str, frozenset[str]] = {}
        for name, kind in sorted(problem.objects.items()):
            self._kinds[name] = frozenset(self._ancestors(kind))
            for ancestor in self._ancestors(kind):
                self._objects_of_type[ancestor].append(name)
        branches = [
            _plan(action, extra, lits, sizes, self.dynamic)
            for action in domain.actions.values()
            for extra, lits in _branches(action.precondition, counter)
        ]
        # a parameter of a type no object has (ALFWorld's "location,") kills its branch
        self.branches = [b for b in branches if all(self.objects_of(k) for _, k in b.params)]
        self._operators: dict[tuple, Operator] = {}
        self._checks = [_compile_checks(b, self._kinds) for b in self.branches]
        self._applicable: dict[tuple, Applicable | None] = {}
        # branches whose changing predicates hold at most one fact initially (where the
        # agent is, what it holds) are memoised on those facts
        few = {p for p in self.dynamic if sizes.get(p, 0) <= 1}
        self._branch_memo: list[dict | None] = [
            {} if set(b.reads) <= few else None for b in self.branches
        ]
        self._changed = {
            name: {e.atom.predicate for e in action.effects}
            for name, action in domain.actions.items()
        }
        self.goal = [
            _plan(None, extra, lits, sizes, self.dynamic)
            for extra, lits in _branches(problem.goal, counter)
        ]
        self._goal_typed = [_compile_checks(b, self._kinds)[0] for b in self.goal]

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

    # -------------------------------------------------------------- applicability
    def applicable(self, state: State) -> list[Applicable]:
        """Every operator applicable in ``state`` (with duplicates across branches), as
        light handles: ``operator`` grounds the one that is actually applied."""
        found: list[Applicable] = []
        for index, branch in enumerate(self.branches):
            memo = self._branch_memo[index]
            if memo is not None:  # read few changing facts: remember its answers
                key_sets = _memo_key(state, branch.reads)
                found_all = memo.get(key_sets)
                if found_all is None:
                    if len(memo) >= BRANCH_MEMO_SIZE:
                        memo.clear()
                    found_all = memo[key_sets] = list(self._applicable_in(index, branch, state))
                found.extend(found_all)
            else:
                found.extend(self._applicable_in(index, branch, state))
        return found

    def prime(self, state: State, reads: tuple[str, ...]) -> list[Applicable]:
        """Fill the memo of every remembered branch that reads exactly ``reads`` with its
        answer in ``state``, as ``applicable`` would on reaching such a state; returns the
        operators found. Sound for any state: those branches' answers depend on nothing
        but the facts of ``reads``."""
        found: list[Applicable] = []
        key_sets = _memo_key(state, reads)
        for index, branch in enumerate(self.branches):
            memo = self._branch_memo[index]
            if memo is None or branch.reads != reads or len(memo) >= BRANCH_MEMO_SIZE:
                continue
            if key_sets not in memo:
                memo[key_sets] = list(self._applicable_in(index, branch, state))
            found.extend(memo[key_sets])
        return found

    def _applicable_in(self, index: int, branch: Branch, state: State) -> Iterator[Applicable]:
        known = self._applicable
        names = [var for var, _ in branch.params]
        for binding in self._matches(branch, state):
            key = (index, *[binding[var] for var in names])
            found = known.get(key, _MISSING)
            if found is _MISSING:  # the type and no-op checks are done once per key
                assert branch.action is not None
                own = tuple(binding[var] for var in names[: branch.arity])
                typed, noop = self._checks[index]
                found = known[key] = (
                    Applicable(branch.action.name, own, key)
                    if typed(binding) and not noop(binding)
                    else None
                )
            if found is not None:
                yield found

    def operator(self, applicable: Applicable) -> Operator:
        op = self._operators.get(applicable.key)
        if op is None:
            branch = self.branches[applicable.key[0]]
            binding = dict(zip([v for v, _ in branch.params], applicable.key[1:], strict=True))
            op = self._ground(branch, binding)
            assert op is not None, "applicable() never yields a no-op"
            self._operators[applicable.key] = op
        return op

    def _matches(self, branch: Branch, state: State, typed: Any = None) -> Iterator[dict[str, str]]:
        """Bindings of the branch's parameters that satisfy its literals in ``state``, and
        ``typed`` (a compiled type check) where given; else the caller checks types."""
        negatives = branch.negatives
        static, dynamic = state.static.facts, state.dynamic.facts
        for binding in self._join(branch, state):
            for full in self._free(branch.unbound, binding) if branch.unbound else (binding,):
                if typed is not None and not typed(full):
                    continue
                for atom in negatives:
                    args = tuple(full.get(a, a) for a in atom.args)
                    fact = (atom.predicate, args)
                    if (
                        (args[0] == args[1])
                        if atom.predicate == "="
                        else (fact in dynamic or fact in static)
                    ):
                        break
                else:
                    yield full

    def _join(self, branch: Branch, state: State) -> list[dict[str, str]]:
        """Bindings satisfying the branch's positive literals, one join step at a time."""
        partial: list[dict[str, str]] = [{}]
        for step in branch.steps:
            extended = []
            checks, binds, key = step.checks, step.binds, step.key
            index = state.static if step.static else state.dynamic
            by_argument, by_predicate = index.by_argument, index.by_predicate
            for binding in partial:
                if key is None:
                    candidates = by_predicate.get(step.predicate, ())
                else:
                    pos, arg, is_var = key
                    value = binding[arg] if is_var else arg
                    candidates = by_argument.get((step.predicate, pos, value), ())
                for args in candidates:
                    for pos, arg, is_var in checks:
                        if args[pos] != (binding[arg] if is_var else arg):
                            break
                    else:
                        new = binding.copy()
                        for pos, var in binds:
                            new[var] = args[pos]
                        extended.append(new)
            partial = extended
            if not partial:
                break
        return partial

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
        assert branch.action is not None
        changed = self._changed[branch.action.name]
        pre = {(True, _ground_fact(a, binding)) for a in branch.positives if a.predicate in changed}
        pre |= {
            (False, _ground_fact(a, binding)) for a in branch.negatives if a.predicate in changed
        }
        adds = [
            (e.condition, _ground_fact(e.atom, binding))
            for e in branch.action.effects
            if e.positive
        ]
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
            return state.holds(_ground_fact(formula, binding))
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
        return any(
            next(self._matches(b, state, typed), None) is not None
            for b, typed in zip(self.goal, self._goal_typed, strict=True)
        )


def _compile_checks(branch: Branch, kinds: dict[str, frozenset[str]]) -> tuple[Any, Any]:
    """The branch's checks as straight-line functions of a binding: ``typed`` (every
    parameter bound to an object of its type) and ``noop`` (every effect cancelled by an add
    of the same atom, "add wins", or already implied by the precondition: the planner then
    drops the operator). They run once for every new operator, which is most of the cost of
    a first visit to a state."""

    def value(arg: str) -> str:
        return f"b[{arg!r}]" if arg.startswith("?") else repr(arg)

    def same(x: tuple[str, ...], y: tuple[str, ...]) -> str:
        pairs = zip(x, y, strict=True)
        return " and ".join(f"{value(a)} == {value(c)}" for a, c in pairs) or "True"

    typed = " and ".join(
        f"{kind!r} in K.get(b[{var!r}], O)" for var, kind in branch.params if kind != "object"
    )
    dropped = []
    for positive, args, same_in_pre, same_adds in branch.effect_checks:
        options = [same(args, other) for other in same_in_pre]
        if not positive:
            options += [same(args, other) for other in same_adds]
        dropped.append("(" + " or ".join(f"({o})" for o in options) + ")" if options else "False")
    noop = " and ".join(dropped) or "True"
    scope = {"K": kinds, "O": _OBJECT}
    exec(f"def typed(b):\n    return {typed or 'True'}\ndef noop(b):\n    return {noop}\n", scope)
    return scope["typed"], scope["noop"]


def _ground_fact(atom: Atom, binding: dict[str, str]) -> Fact:
    return atom.predicate, tuple([binding.get(a, a) for a in atom.args])


class FactIndex:
    """A set of facts indexed by predicate and by (predicate, position, value)."""

    def __init__(self, facts: Iterable[Fact] = ()):
        self.facts: set[Fact] = set()
        self.by_predicate: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        self.by_argument: dict[tuple[str, int, str], set[tuple[str, ...]]] = defaultdict(set)
        for fact in facts:
            self.add(fact)

    def add(self, fact: Fact) -> None:
        if fact in self.facts:
            return
        self.facts.add(fact)
        predicate, args = fact
        self.by_predicate[predicate].add(args)
        for i, value in enumerate(args):
            self.by_argument[(predicate, i, value)].add(args)

    def remove(self, fact: Fact) -> None:
        if fact not in self.facts:
            return
        self.facts.discard(fact)
        predicate, args = fact
        self.by_predicate[predicate].discard(args)
        for i, value in enumerate(args):
            self.by_argument[(predicate, i, value)].discard(args)


class View(TypingMapping[str, set[tuple[str, ...]]]):
    """textworld's fact list by predicate: shared static facts under per-episode changes."""

    def __init__(self, static: dict[str, set[tuple[str, ...]]], dynamic: Iterable[Fact]):
        self.static = static
        self.dynamic: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        for predicate, args in dynamic:
            self.dynamic[predicate].add(args)

    def __getitem__(self, predicate: str) -> set[tuple[str, ...]]:
        found = self.dynamic.get(predicate)
        if found is None:
            found = self.static.get(predicate)
        if found is None:
            raise KeyError(predicate)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(set(self.static) | set(self.dynamic))

    def __len__(self) -> int:
        return len(set(self.static) | set(self.dynamic))

    def changes(self) -> set[Fact]:
        return {(p, args) for p, all_args in self.dynamic.items() for args in all_args}


class State:
    """The planner's facts (``truth``) and textworld's fact ``view`` of one episode.

    Facts of predicates no action changes live in ``static``, shared by every state of a
    game; only the rest is copied, so states are cheap to make, save and load.
    """

    def __init__(self, static: FactIndex, dynamic: Iterable[Fact], view_changes: Iterable[Fact]):
        self.static = static
        self.dynamic = FactIndex(dynamic)
        self.view = View(static.by_predicate, view_changes)

    @classmethod
    def initial(cls, problem: Problem, dynamic_predicates: set[str]) -> State:
        static = [f for f in problem.init if f[0] not in dynamic_predicates]
        dynamic = [f for f in problem.init if f[0] in dynamic_predicates]
        return cls(FactIndex(static), dynamic, dynamic)

    def copy(self) -> State:
        return State(self.static, self.dynamic.facts, self.view.changes())

    def holds(self, fact: Fact) -> bool:
        return fact in self.dynamic.facts or fact in self.static.facts

    def apply(self, logic: Logic, op: Operator) -> None:
        fired = [
            (positive, fact)
            for positive, fact, condition, binding in op.effects
            if condition is None or logic.holds(condition, self, binding)
        ]
        added = {fact for positive, fact in fired if positive}
        for positive, fact in fired:
            if not positive and fact not in added:
                self.dynamic.remove(fact)
        for fact in added:
            self.dynamic.add(fact)
        view = self.view.dynamic
        for positive, (predicate, args), _, _ in op.effects:
            negated = "not_" + predicate
            if positive:
                view[negated].discard(args)
                view[predicate].add(args)
            else:
                view[predicate].discard(args)
                view[negated].add(args)


def _memo_key(state: State, reads: tuple[str, ...]) -> tuple[frozenset, ...]:
    """A memoised branch's key: the facts of the changing predicates it reads."""
    return tuple(frozenset(state.dynamic.by_predicate.get(p, ())) for p in reads)
