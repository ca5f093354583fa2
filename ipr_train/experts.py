"""Expert trajectories per env, in the env's ReAct protocol layout, replayed and verified.

Each expert is a script of ``Thought: ...\\nAction: ...`` replies that the rollout engine
plays through the protocol and the env, exactly as an agent's replies would be played, so
the saved turns are what an agent sees (the opening, formatted observations) and the
``task``, ``steps`` and rewards come from the env itself. An expert is kept only if the
replay reaches ``min_reward`` (default 1.0: the outcome the source promises); the rest are
dropped with a reason, counted in the ``ExpertReport``.

Sources:
* ``ipr/WebShop-v0``: the oracle (``ipr_gym.webshop.oracle``), which searches with WebShop's
  human queries or the instruction's words, never the product's name; its thoughts are the
  oracle's one-line templates.
* ``ipr/ALFWorld-v0``: ETO's 3,554 expert trajectories of the train games (ETO wording,
  actions only); each action gets a short templated thought (``alfworld_thought``), since
  the source has none.
* ``ipr/InterCodeSQL-v0``: InterCode's GPT-4 episodes that reach reward 1.0, cut after the
  query that scored it and ended with ``submit``, with templated thoughts; for tasks GPT-4
  did not solve, GPT-3.5 ReAct episodes that reach 1.0, with their own thoughts. Statements
  are put on one line inside IPR's ```` ```sql ```` block (IPR reads the block's first line).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipr_gym
from ipr_gym.data import dataset_dir
from ipr_gym.pool import EnvPool
from ipr_gym.react import get_protocol
from ipr_train.progress import progress_bar
from ipr_train.records import Trajectory, write_jsonl, write_text
from ipr_train.rollout import Start, rollout

Script = tuple[str, ...]


@dataclass
class ExpertReport:
    env_id: str
    split: str
    candidates: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        reasons = "; ".join(f"{n} {why}" for why, n in self.dropped.most_common()) or "none"
        sources = ", ".join(f"{n} from {s}" for s, n in self.sources.most_common())
        return (f"{self.env_id} {self.split}: {self.kept} of {self.candidates} expert "
                f"trajectories kept ({sources}); dropped: {reasons}")  # fmt: skip


def react(thought: str, action: str) -> str:
    return f"Thought: {thought}\nAction: {action}"


# ------------------------------------------------------------------------------ WebShop
def webshop_scripts(env: Any, shopper: str = "oracle") -> Iterator[tuple[Any, Script | str, str]]:
    from ipr_gym.webshop.oracle import OracleUnreachable

    for task in env.tasks:
        try:
            turns = env.expert_turns(task, shopper=shopper)
        except OracleUnreachable:
            yield task, "the shopper's queries from the instruction do not list the product", ""
            continue
        yield task, tuple(react(t, a) for t, a in turns), shopper


# ------------------------------------------------------------------------------ ALFWorld
_ALFWORLD_THOUGHTS = (
    (re.compile(r"go to (.+)"), "I should go to {0} and see what is there."),
    (re.compile(r"take (.+) from (.+)"), "I found {0}; I will take it from {1}."),
    (re.compile(r"put (.+) in/on (.+)"), "Now I put {0} in/on {1}."),
    (re.compile(r"open (.+)"), "{0} is closed; I will open it and look inside."),
    (re.compile(r"close (.+)"), "I am done with {0}, so I close it."),
    (re.compile(r"use (.+)"), "I will use {0}."),
    (re.compile(r"toggle (.+)"), "I will turn on {0}."),
    (re.compile(r"(clean|heat|cool) (.+) with (.+)"), "I need to {0} {1}, so I {0} it with {2}."),
    (re.compile(r"examine (.+)"), "I will examine {0}."),
)


def alfworld_thought(action: str) -> str:
    """A short templated thought for an ETO expert action (the source has no thoughts)."""
    for pattern, template in _ALFWORLD_THOUGHTS:
        match = pattern.fullmatch(action)
        if match:
            return template.format(*match.groups())
    return "I will do this next."


def alfworld_scripts(env: Any, data_dir: str | None) -> Iterator[tuple[Any, Script | str, str]]:
    root = dataset_dir("alfworld", data_dir) / "eto" / "json_2.1.1" / env.split
    known = set(env.tasks)
    files = sorted(root.glob("*/*/gt_traj.json"))
    if not files:
        raise ValueError(f"no ETO expert trajectories for split {env.split!r} under {root}")
    for path in files:
        task = f"{path.parent.parent.name}/{path.parent.name}"
        if task not in known:
            yield task, f"no game of split {env.split!r} for this trajectory", ""
            continue
        turns = json.loads(path.read_text())
        actions = [t["value"].strip() for t in turns if t["from"] == "gpt"]
        yield task, tuple(react(alfworld_thought(a), a) for a in actions), "ETO"


# ------------------------------------------------------------------------------ InterCode
def _sql(statement: str) -> str:
    return f"\n```sql\n{' '.join(statement.split())}\n```"


def _sql_thought(statement: str) -> str:
    words = statement.split()
    head = words[0].upper() if words else ""
    if head == "SHOW":
        return "I should see which tables the database has."
    if head in ("DESCRIBE", "DESC") and len(words) > 1:
        return f"I should look at the columns of the {words[1].strip('`;')} table."
    return "I should query the database for what the question asks."


SUBMIT_THOUGHT = "The last result answers the question, so I submit it."


def intercode_scripts(env: Any, data_dir: str | None) -> Iterator[tuple[Any, Script | str, str]]:
    folder = dataset_dir("intercode", data_dir) / "trajectories"
    gpt4 = json.loads((folder / "ic_sql_multiturn_gpt-4_10_turns.json").read_text())
    react_runs = json.loads((folder / "ic_sql_react_10_turns.json").read_text())
    gpt4 = {int(e["task_id"]): e for e in gpt4.values()}
    react_runs = {int(e["task_id"]): e for e in react_runs.values()}
    for task in env.tasks:
        episode = gpt4.get(int(task))
        if episode is not None and episode["summary"]["max_reward"] == 1.0:
            actions = episode["turn_history"]["actions"][: episode["summary"]["max_reward_idx"] + 1]
            yield task, (*(react(_sql_thought(a), _sql(a)) for a in actions),
                         react(SUBMIT_THOUGHT, "submit")), "GPT-4"  # fmt: skip
            continue
        episode = react_runs.get(int(task))
        if episode is None or episode["summary"]["max_reward"] != 1.0:
            yield task, "neither GPT-4 nor GPT-3.5 ReAct reached reward 1.0", ""
            continue
        history = episode["turn_history"]
        script: list[str] = []
        for thought, action in zip(history["thoughts"], history["actions"], strict=False):
            thought = " ".join(thought.split())
            if action.strip() == "submit":
                script.append(react(thought, "submit"))
                break
            inner = re.fullmatch(r"execute\[(.*)\]", action.strip(), re.DOTALL)
            script.append(react(thought, _sql(inner.group(1) if inner else action)))
        yield task, tuple(script), "GPT-3.5 ReAct"


SOURCES: dict[str, Callable[..., Iterator[tuple[Any, Script | str, str]]]] = {
    "ipr/WebShop-v0": lambda env, data_dir: webshop_scripts(env),
    "ipr/ALFWorld-v0": alfworld_scripts,
    "ipr/InterCodeSQL-v0": intercode_scripts,
}
# other demonstrators an env offers, by name (``source=``); the default is SOURCES'
VARIANTS: dict[str, dict[str, Callable[..., Iterator[tuple[Any, Script | str, str]]]]] = {
    "ipr/WebShop-v0": {
        "oracle": SOURCES["ipr/WebShop-v0"],
        "first_result": lambda env, data_dir: webshop_scripts(env, "first_result"),
    },
}


def build_experts(
    env_id: str, split: str = "train", *, data_dir: str | None = None, limit: int | None = None,
    env_kwargs: dict[str, Any] | None = None, workers: int = 0, slots: int = 32,
    min_reward: float = 1.0, source: str | None = None,
) -> tuple[list[Trajectory], ExpertReport]:  # fmt: skip
    """Replay every expert of ``split`` and keep those that reach ``min_reward``;
    ``source`` picks another demonstrator where the env has some (``VARIANTS``)."""
    if env_id not in SOURCES:
        raise ValueError(f"no expert source for {env_id!r}; known: {sorted(SOURCES)}")
    make_scripts = SOURCES[env_id]
    if source is not None:
        known = VARIANTS.get(env_id, {})
        if source not in known:
            raise ValueError(f"{env_id} has no expert source {source!r}; known: {sorted(known)}")
        make_scripts = known[source]
    protocol = get_protocol(env_id)
    kwargs: dict[str, Any] = {**protocol.env_kwargs, **(env_kwargs or {}), "split": split,
                              "max_episode_steps": None}  # fmt: skip
    if data_dir is not None:
        kwargs.setdefault("data_dir", data_dir)
    data_dir = kwargs.get("data_dir")
    report = ExpertReport(env_id, split)
    env = ipr_gym.make(env_id, **kwargs)
    try:
        candidates = list(make_scripts(env.unwrapped, data_dir))
    finally:
        env.close()
    candidates = candidates[:limit]
    report.candidates = len(candidates)
    starts = []
    for task, script, source in candidates:
        if isinstance(script, str):
            report.dropped[script] += 1
            continue
        starts.append(Start(task=task, script=script, id=f"{env_id}/{split}/{task}",
                            meta={"source": source}))  # fmt: skip
    with (
        EnvPool(
            env_id, max(1, min(slots, len(starts))), workers=workers, env_kwargs=kwargs
        ) as pool,
        progress_bar(len(starts), f"experts {env_id}") as bar,
    ):
        result = rollout(None, pool, protocol, starts, max_steps=None, data_dir=data_dir,
                         progress=bar)  # fmt: skip
    kept = []
    for trajectory in result.trajectories:
        if "error" in trajectory.meta and not trajectory.steps[-1:]:
            report.dropped[f"replay failed: {trajectory.meta['error']}"] += 1
        elif not trajectory.steps or not trajectory.steps[-1].terminated:
            report.dropped["the replay did not end the episode"] += 1
        elif trajectory.reward < min_reward:
            report.dropped[f"the replay scored below {min_reward}"] += 1
        else:
            kept.append(trajectory)
            report.sources[trajectory.meta["source"]] += 1
    report.kept = len(kept)
    return kept, report


def write_experts(path: str | Path, trajectories: list[Trajectory], report: ExpertReport) -> Path:
    """The trajectories as JSONL and the report beside them (``<file>.report.json``)."""
    path = Path(path)
    write_jsonl(path, trajectories)
    side = path.with_name(path.name + ".report.json")
    write_text(side, json.dumps({
        "env_id": report.env_id, "split": report.split, "candidates": report.candidates,
        "kept": report.kept, "dropped": dict(report.dropped), "sources": dict(report.sources),
    }, indent=1))  # fmt: skip
    return side
