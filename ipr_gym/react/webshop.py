"""IPR's WebShop protocol: ETO's instruction, no in-context example at evaluation (IPR's
``prompt_with_icl(..., 0)``; the one-shot example is kept for whoever wants it), the search
page as the task, ``Observation:\\n`` before each page, and the reply's action taken whole
after ``Action:``."""

from __future__ import annotations

from ipr_gym.react.protocol import ReActProtocol

INSTRUCTION = """You are web shopping.
I will give you instructions about what to do.
You have to follow the instructions.
Every round I will give you an observation and a list of available actions, you have to respond an action based on the state and instruction.
You can use search action if search is available.
You can click one of the buttons in clickables.
An action should be of the following structure:
search[keywords]
click[value]
If the action is not valid, perform nothing.
Keywords in search are up to you, but the value in click must be a value in the list of available actions.
Remember that your keywords in search should be carefully designed.
Your response should use the following format:

Thought: I think ...
Action: click[something]"""  # noqa: E501 - the benchmark's prompt, verbatim

PROTOCOL = ReActProtocol(
    env_id="ipr/WebShop-v0",
    instruction=INSTRUCTION,
    n_examples=0,
    observation_prefix="Observation:\n",
    format_error="Observation: Invalid format. The input must contains 'Action: '",
    dataset="webshop",
    examples_file="ipr/webshop_icl.json",
)
