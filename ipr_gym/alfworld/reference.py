"""The reference engine: the real alfworld + textworld stack (``pip install ipr[textworld]``).

textworld's PDDL environment with ALFWorld's name demangler, exactly as ALFWorld builds
it. Two things are added around it, both through the engine's own state: ``reset``
returns to the initial state instead of re-running the PDDL translator (the planner's C
library keeps an id per visited state, and the Python fact list is copied), and
``save``/``load`` do the same for any state, so branching needs no replay.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ReferenceState:
    """A point of a textworld episode. Valid only in the process that made it."""

    state_id: int
    facts: tuple[Any, Any, Any, Any]  # copies of textworld State's four fact tables
    game_state: Any
    operators: dict[int, Any]
    moves: int


def _copied(tables: tuple[Any, Any, Any, Any]) -> tuple[Any, Any, Any, Any]:
    """A copy of textworld State's fact tables (facts, vars by name, by type, counts)."""
    facts, by_name, by_type, counts = tables
    return (
        {k: set(v) for k, v in facts.items()},
        dict(by_name),
        {k: set(v) for k, v in by_type.items()},
        counts.copy(),
    )


class ReferenceEngine:
    """One textworld episode of one game file."""

    def __init__(self, path: Path):
        try:
            import textworld
            from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
        except ImportError as error:
            raise ImportError(
                "engine='textworld' needs alfworld and textworld: pip install 'ipr[textworld]'"
            ) from error
        infos = textworld.EnvInfos(won=True, admissible_commands=True)
        self._env = textworld.start(
            str(path), request_infos=infos, wrappers=[AlfredDemangler(), AlfredInfos]
        )
        self._env.reset()
        inner = self._env
        while getattr(inner, "_wrapped_env", None) is not None:
            inner = inner._wrapped_env
        self._pddl = inner
        lib = inner.downward_lib
        lib.get_state_id.restype = ctypes.c_int
        lib.set_state_id.argtypes = [ctypes.c_int]
        self._lib = lib
        self._initial = self.save()

    @property
    def feedback(self) -> str:
        return self._pddl.state.feedback

    @property
    def admissible(self) -> list[str]:
        return list(self._pddl.state["admissible_commands"])

    @property
    def won(self) -> bool:
        return bool(self._pddl.state["won"])

    def reset(self) -> str:
        self.load(self._initial)
        return self.feedback

    def close(self) -> None:
        self._env.close()

    def step(self, command: str) -> tuple[str, bool]:
        admissible = command.strip() in self._pddl.state["_valid_commands"]
        self._env.step(command)
        return self.feedback, admissible

    def save(self) -> ReferenceState:
        state = self._pddl._pddl_state
        return ReferenceState(
            state_id=self._lib.get_state_id(),
            facts=_copied(
                (state._facts, state._vars_by_name, state._vars_by_type, state._var_counts)
            ),
            game_state=self._pddl.state,
            operators=dict(state._operators),
            moves=self._pddl._moves,
        )

    def load(self, saved: ReferenceState) -> None:
        self._lib.set_state_id(saved.state_id)
        state = self._pddl._pddl_state
        facts, by_name, by_type, counts = _copied(saved.facts)
        state._facts.clear()
        state._facts.update(facts)
        state._vars_by_name = by_name
        state._vars_by_type.clear()
        state._vars_by_type.update(by_type)
        state._var_counts = counts
        state._operators = dict(saved.operators)
        self._pddl.state = saved.game_state
        self._pddl._moves = saved.moves
