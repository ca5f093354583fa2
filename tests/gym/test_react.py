"""The ReAct layer reads and writes turns the way IPR's evaluation does."""

import json
import pathlib

import pytest

from ipr_gym.react import (
    ReActProtocol,
    ReActStep,
    format_react,
    get_protocol,
    opening_messages,
    parse_react,
    register_protocol,
)

SHARED = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"


def test_thought_and_action_are_split_at_the_first_action():
    step = parse_react("Thought: the desk may hold it.\nAction: go to desk 1\n")
    assert step == ReActStep("the desk may hold it.", "go to desk 1")


def test_action_keeps_everything_after_action_marker_like_ipr():
    reply = "Thought: query it\nAction: \n```sql\nSELECT 1\n```"
    assert parse_react(reply).action == "```sql\nSELECT 1\n```"
    assert parse_react("Action: search[a]\nThought: later").thought is None


def test_reply_without_action_has_none():
    assert parse_react("I think I should look around.") == ReActStep(None, None)


@pytest.mark.parametrize("thought", ["one line", "two\nlines"])
def test_format_then_parse_round_trips(thought):
    step = ReActStep(thought, "click[Buy Now]")
    assert parse_react(format_react(step)) == step


def test_opening_messages_follow_ipr_conversation_layout():
    example = json.loads((SHARED / "alfworld/ipr/alfworld_icl.json").read_text())[0]
    messages = opening_messages("INSTRUCTION", [example], 1, "TASK")
    assert messages[0] == {"role": "user", "content": "INSTRUCTION"}
    assert messages[1] == {"role": "assistant", "content": "OK"}
    assert messages[2:-1] == example
    assert messages[-1] == {"role": "user", "content": "TASK"}
    assert len(opening_messages("I", [example], 0, "T")) == 3


def test_protocols_are_found_by_env_id_and_unknown_ids_are_named():
    protocol = ReActProtocol(env_id="ipr/Toy-v0", instruction="Play.", observation_prefix="Obs: ")
    register_protocol("ipr/Toy-v0", protocol)
    assert get_protocol("ipr/Toy-v0").format_observation("hi") == "Obs: hi"
    assert get_protocol("ipr/Toy-v0").parse_action("Thought: t\nAction: look") == "look"
    with pytest.raises(KeyError, match="ipr/Toy-v0"):
        get_protocol("ipr/Nope-v0")
