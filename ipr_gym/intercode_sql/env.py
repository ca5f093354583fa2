"""``ipr/InterCodeSQL-v0``: answer a question about a Spider database with SQL.

The first observation is the question. An action is one SQL statement, answered by its
result as InterCode shows it (``str`` of the list of row tuples; ``None`` for a statement
without a result set; ``Error executing query: ...`` on error, a result of more than
``max_rows`` rows or ``max_observation_chars`` characters included), or ``submit``, which
ends the episode: the reward compares the *last* statement's result with the gold query's result
(``reward.intercode_reward``) and the observation repeats that last result, as in
InterCode. Like InterCode, the gold query runs in the session's current database.

A statement that fails or that the sandbox refuses sets ``info["invalid"]``; as in
InterCode its error then is the answer ``submit`` scores (0), so it is not a no-op.

Backends: ``sqlite`` (default, embedded: the same dump converted by
``sqlite_convert``; see ``sqlite_backend`` for what it cannot match) and ``mysql`` (any
MySQL-compatible server by URL; ``ipr-gym sql-server`` starts a private MariaDB).

Snapshots need no database state: nothing an agent runs can change the databases (a
read-only account, the sandbox filter). A snapshot carries the session's current
database and last result instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ipr_gym.core import TaskId, TextEnv, Transition
from ipr_gym.data import data_root, dataset_dir
from ipr_gym.intercode_sql.mysql_backend import MySQLBackend
from ipr_gym.intercode_sql.result import MAX_OBSERVATION_CHARS, Result
from ipr_gym.intercode_sql.reward import intercode_reward
from ipr_gym.intercode_sql.sqlite_backend import SQLiteBackend
from ipr_gym.intercode_sql.sqlite_convert import convert
from ipr_gym.intercode_sql.tasks import SQLTask, load_tasks, split_indices

BACKENDS = ("sqlite", "mysql")
URL_VAR = "IPR_INTERCODE_MYSQL_URL"
SUBMIT = "submit"


class InterCodeSQLEnv(TextEnv):
    def __init__(
        self,
        split: str = "test",
        backend: str = "sqlite",
        url: str | None = None,
        timeout_s: float = 5.0,
        max_rows: int = 10_000,
        max_observation_chars: int = MAX_OBSERVATION_CHARS,
        max_episode_steps: int | None = None,
        data_dir: str | None = None,
        render_mode: str | None = None,
    ):
        super().__init__(split=split, max_episode_steps=max_episode_steps, render_mode=render_mode)
        if backend not in BACKENDS:
            raise ValueError(f"unknown InterCode-SQL backend {backend!r}; valid: {list(BACKENDS)}")
        self.backend_name = backend
        root = None if data_dir is None else str(data_dir)
        self._all = load_tasks(root)
        self._tasks = split_indices(split, len(self._all))
        self._backend: MySQLBackend | SQLiteBackend
        if backend == "sqlite":
            folder = convert(dataset_dir("intercode", root) / "ic_spider_dbs.sql", data_root(root))
            self._backend = SQLiteBackend(folder, timeout_s=timeout_s, max_rows=max_rows,
                                          max_observation_chars=max_observation_chars)  # fmt: skip
        else:
            url = url or os.environ.get(URL_VAR)
            if not url:
                raise ValueError(
                    f"backend='mysql' needs url= or ${URL_VAR}; `ipr-gym sql-server` starts "
                    "a private MariaDB with the Spider databases and prints its URL"
                )
            self._backend = MySQLBackend(url, timeout_s=timeout_s, max_rows=max_rows,
                                         max_observation_chars=max_observation_chars)  # fmt: skip
        self._record: SQLTask | None = None
        self._result: Result = Result(None)
        self._gold: dict[tuple[int, str | None], Result] = {}

    @property
    def tasks(self) -> Sequence[TaskId]:
        return self._tasks

    @property
    def instruction(self) -> str:
        return "" if self._record is None else self._record.query

    def task_record(self, task: TaskId) -> SQLTask:
        return self._all[int(task)]

    def _options(self) -> dict[str, Any]:
        return {"backend": self.backend_name}

    def _begin(self, task: TaskId) -> str:
        self._record = self._all[int(task)]
        self._backend.start_episode(self._record.db)
        self._result = Result(None)
        return self._record.query

    def _act(self, action: str) -> Transition:
        assert self._record is not None
        if action == SUBMIT:
            key = (self._record.index, self._backend.database)
            gold = self._gold.get(key)
            if gold is None:
                gold = self._gold[key] = self._backend.gold(self._record.gold)
            reward = intercode_reward(self._result.rows, gold.rows)
            return Transition(self._result.observation, reward, True, won=reward == 1.0)
        self._result = self._backend.run(action)
        return Transition(self._result.observation, invalid=self._result.error is not None)

    def _save_state(self) -> Any:
        return (self._backend.database, self._result)

    def _load_state(self, task: TaskId, state: Any) -> bool:
        database, last = state
        self._record = self._all[int(task)]
        self._backend.start_episode(database or self._record.db)
        self._result = last
        return True

    def expert_actions(self, task: TaskId) -> list[str]:
        """The gold query, then ``submit`` (reward 1.0 but for the six invalid golds)."""
        return [self._all[int(task)].gold, SUBMIT]

    def close(self) -> None:
        self._backend.close()
