"""IPR's InterCode-SQL protocol: IPR's instruction and one example, the question as the
task, and IPR's reading of replies and results: ``submit`` anywhere in the action submits;
otherwise the first line of the first ```` ```sql ```` block is the statement (none: the
format error); a result is shown as ``[Executed Successfully with No Output]`` when empty,
with a newline after an error (unless it says "Unknown"), cut to 350 characters + "...".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ipr_gym.react.protocol import ReActProtocol

INSTRUCTION = """You are a helpful assistant assigned with the task of problem-solving. To achieve this, you will interact with a MySQL Database system using SQL queries to answer a question.
At each turn, you should first provide your step-by-step thinking for solving the task. Your thought process should start with "Thought: ", for example: Thought: I should write a SQL query that gets the average GNP and total population from nations whose government is US territory.
After that, you have two options:
1) Interact with a mysql programming environment and receive the corresponding output. Your code should start with "Action: " and should be surrounded with ```sql ``` tag, for example: Action: \\n```sql\\nSELECT AVG(GNP), SUM(population) FROM nations WHERE government = 'US Territory'\\n```
2) Directly submit the result, for example: Action: submit.
You should use this format: "Thought: your thought\\nAction: \\n```sql\\n<the mysql command>\\n```". You will receive the corresponding output for your sql command.
Your output should contain only one "Action" part.
The "Action" part should be executed with a mysql interpreter or propose an answer. Any natural language in it should be commented out.
The SQL query and submit parts can not appear in your output simutaneously."""  # noqa: E501

FORMAT_ERROR = (
    "Observation: I don't understand your input.\n Your input shoud include the key world "
    '"Action:".\n If you want to perform a query operation, please use the following format:'
    "\n Action: \n```sql\nthe mysql code\n```. And the action should be executable and should "
    "not contain natural language.\n If you have got the final answer, please use the "
    "following format:\n Action: submit. Remember your output should contain only one "
    '"Action:" part.'
)
_SQL_BLOCK = re.compile(r"```sql(.*?)```", re.DOTALL)
MAX_OBSERVATION = 350


@dataclass(frozen=True)
class InterCodeSQLProtocol(ReActProtocol):
    def parse_action(self, reply: str) -> str | None:
        action = self.parse(reply).action
        if action is None:
            return None
        if "submit" in action:
            return "submit"
        blocks = _SQL_BLOCK.findall(action)
        if not blocks:
            return None
        statement = blocks[0].strip().split("\n")[0]
        return statement or None

    def format_observation(self, observation: str) -> str:
        if "Error" in observation and "Unknown" not in observation:
            shown = f"{observation}\n"
        else:
            shown = observation or "[Executed Successfully with No Output]"
        if len(shown) > MAX_OBSERVATION:
            shown = shown[:MAX_OBSERVATION] + "..."
        return f"{self.observation_prefix}{shown}"


PROTOCOL = InterCodeSQLProtocol(
    env_id="ipr/InterCodeSQL-v0",
    instruction=INSTRUCTION,
    n_examples=1,
    observation_prefix="Observation: ",
    format_error=FORMAT_ERROR,
    dataset="intercode",
    examples_file="ipr/intercode_sql_icl.json",
)
