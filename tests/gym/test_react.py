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


def test_intercode_protocol_reads_replies_and_results_as_ipr():
    p = get_protocol("ipr/InterCodeSQL-v0")
    assert p.parse_action("Thought: t\nAction: \n```sql\nSELECT a\nFROM b\n```") == "SELECT a"
    assert p.parse_action("Thought: t\nAction: submit.") == "submit"
    assert p.parse_action("Thought: t\nAction: SELECT 1") is None  # no sql block
    assert p.parse_action("Thought: only thinking") is None
    assert p.format_observation("") == "Observation: [Executed Successfully with No Output]"
    assert p.format_observation("Error executing query: x") == (
        "Observation: Error executing query: x\n"
    )
    assert p.format_observation("Error executing query: Unknown column") == (
        "Observation: Error executing query: Unknown column"
    )
    long = str([(i,) for i in range(200)])
    shown = p.format_observation(long)
    assert shown == "Observation: " + long[:350] + "..."


def test_alfworld_and_webshop_prompts_follow_ipr(installed_data):
    alfworld = get_protocol("ipr/ALFWorld-v0")
    first = (
        "-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room.\n\n"
        "Your task is to: x."
    )
    messages = alfworld.opening(first, str(installed_data))
    assert messages[0]["content"].startswith("Interact with a household to solve a task.")
    assert messages[1] == {"role": "assistant", "content": "OK"}
    assert messages[2]["content"].startswith("You are in the middle of a room.")  # the example
    # IPR drops the first paragraph and joins the rest with a single newline
    assert messages[-1]["content"] == "You are in the middle of a room.\nYour task is to: x."
    assert len(messages) == 2 + len(alfworld.load_examples(str(installed_data))[0]) + 1
    webshop = get_protocol("ipr/WebShop-v0")
    page = "WebShop [SEP] Instruction: [SEP] buy x [SEP] Search"
    assert [m["role"] for m in webshop.opening(page)] == ["user", "assistant", "user"]
    assert webshop.opening(page)[-1]["content"] == page  # IPR evaluates WebShop zero-shot
    assert webshop.format_observation("A [SEP] B") == "Observation:\nA [SEP] B"
