"""Reading a model's ReAct reply: ``Thought: ...`` then ``Action: ...``."""

from __future__ import annotations

import re
from dataclasses import dataclass

# IPR's envs take everything after the first "Action:" (one optional space), DOTALL.
_ACTION = re.compile(r"Action:\s?(.*)", re.DOTALL)
_THOUGHT = re.compile(r"Thought:\s?(.*?)\s*(?=Action:|\Z)", re.DOTALL)


@dataclass(frozen=True)
class ReActStep:
    """One assistant turn split into its parts; ``None`` where a part is missing."""

    thought: str | None
    action: str | None


def parse_react(text: str) -> ReActStep:
    """Split a reply the way IPR's evaluation does.

    The action is the text after the first ``Action:`` up to the end of the reply, stripped;
    the thought is the text between ``Thought:`` and that ``Action:``. A reply with no
    ``Action:`` has no action: the caller answers it with the protocol's format error.
    """
    text = text.strip()
    action_match = _ACTION.search(text)
    before_action = text[: action_match.start()] if action_match else text
    thought_match = _THOUGHT.search(before_action)
    action = action_match.group(1).strip() if action_match else None
    thought = thought_match.group(1).strip() if thought_match else None
    return ReActStep(thought=thought, action=action)


def format_react(step: ReActStep) -> str:
    """The assistant turn that ``parse_react`` reads back as ``step``."""
    lines = []
    if step.thought is not None:
        lines.append(f"Thought: {step.thought}")
    if step.action is not None:
        lines.append(f"Action: {step.action}")
    return "\n".join(lines)
