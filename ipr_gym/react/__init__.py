"""The ReAct layer: what agents and trainers share about talking to an env in text.

Prompt assembly (instruction, one-shot examples, task), ``Thought:/Action:`` parsing and
``Observation:`` formatting, per env id. It sits above the environments: envs know nothing
of prompts, and every agent reads and writes turns through this one place.
"""

from ipr_gym.react.parsing import ReActStep, format_react, parse_react
from ipr_gym.react.prompting import Message, opening_messages
from ipr_gym.react.protocol import ReActProtocol, get_protocol, protocol_ids, register_protocol

__all__ = [
    "Message",
    "ReActProtocol",
    "ReActStep",
    "format_react",
    "get_protocol",
    "opening_messages",
    "parse_react",
    "protocol_ids",
    "register_protocol",
]
