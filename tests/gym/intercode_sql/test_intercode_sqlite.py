"""The embedded SQLite backend: converted from the same dump, contained, MySQL-like."""

import functools
import hashlib
import sqlite3
import time
import tracemalloc
from decimal import Decimal

import gymnasium as gym
import pytest
from test_intercode_env import ADVERSARIAL

import ipr_gym  # noqa: F401
from ipr_gym.data import data_root, dataset_dir
from ipr_gym.intercode_sql.mysql_backend import MySQLBackend
from ipr_gym.intercode_sql.reward import intercode_reward
from ipr_gym.intercode_sql.sqlite_backend import SQLiteBackend
from ipr_gym.intercode_sql.sqlite_convert import COLLATION, convert, mysql_ci
from ipr_gym.intercode_sql.tasks import load_tasks
from ipr_gym.testing.conformance import check_conformance


@pytest.fixture(scope="module")
def folder():
    return convert(dataset_dir("intercode") / "ic_spider_dbs.sql", data_root())


def test_conversion_holds_every_database_table_and_row(folder):
    databases = sorted(p.stem for p in folder.glob("*.sqlite"))
    assert len(databases) == 20
    tables = rows = 0
    for name in databases:
        conn = sqlite3.connect(folder / f"{name}.sqlite")
        conn.create_collation(COLLATION, mysql_ci)
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        names.remove("_mysql_columns")
        tables += len(names)
        rows += sum(conn.execute(f"SELECT count(*) FROM `{n}`").fetchone()[0] for n in names)
        conn.close()
    assert (tables, rows) == (81, 6952)  # the dump's own counts (data README)
    assert convert(dataset_dir("intercode") / "ic_spider_dbs.sql", data_root()) == folder


def test_answers_like_mysql(folder):
    backend = SQLiteBackend(folder)
    backend.start_episode("world_1")
    assert backend.run("SELECT count(*) FROM city WHERE name = 'kabul  '").rows == ((1,),)
    total = backend.run("SELECT sum(population) FROM country WHERE governmentform = 'US Territory'")
    assert total.rows == ((Decimal("329000"),),)
    mean = backend.run("SELECT avg(population) FROM city WHERE countrycode = 'AFG'")
    assert mean.rows == ((Decimal("583025.0000"),),)
    assert (
        backend.run("SHOW TABLES").observation == "[('city',), ('country',), ('countrylanguage',)]"
    )
    assert backend.run("DESCRIBE nowhere").error == "Table 'world_1.nowhere' doesn't exist"
    assert backend.run("USE singer").rows is None and backend.database == "singer"


def test_gold_results_agree_with_mariadb(folder, mariadb):
    """Measured: 92.9% of the 1,034 gold queries give the same answer (reward 1.0) on both;
    the rest is SQLite vs MySQL (row order of joins and ties, bare GROUP BY columns, integer
    division) or the six golds MySQL rejects."""
    mysql, lite = MySQLBackend(mariadb.url()), SQLiteBackend(folder)
    agree = 0
    for task in load_tasks():
        mysql.start_episode(task.db)
        lite.start_episode(task.db)
        a, b = mysql.query(task.gold), lite.run(task.gold)
        both_fail = a.error is not None and b.error is not None
        agree += both_fail or (a.error is None and intercode_reward(b.rows, a.rows) == 1.0)
    mysql.close()
    assert agree / len(load_tasks()) >= 0.92


def test_empty_statements_are_answered_as_on_mariadb_and_reindex_is_refused(folder, mariadb):
    mysql, lite = MySQLBackend(mariadb.url()), SQLiteBackend(folder)
    try:
        mysql.start_episode("poker_player")
        lite.start_episode("poker_player")
        for statement in ["", "   ", ";", " ; ", "-- note", "/* note */"]:
            got = (lite.run(statement).observation, mysql.run(statement).observation)
            assert got[0] == got[1], (statement, got)
        assert mysql.run("").observation == "Error executing query: Query was empty"
        for statement in ["REINDEX", "reindex people", "  REINDEX people_pk"]:
            assert lite.run(statement).observation == (
                "Error executing query: REINDEX statements are not allowed: this database is "
                "read-only"
            )
            assert mysql.run(statement).error is not None  # MySQL has no REINDEX at all
    finally:
        mysql.close()
        lite.close()


def test_adversarial_statements_are_contained(folder):
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.sqlite")}
    env = gym.make("ipr/InterCodeSQL-v0", split="all", timeout_s=2.0)
    task = next(t.index for t in load_tasks() if t.db == "poker_player")
    for statement in [*ADVERSARIAL, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                      "SELECT x + 1 FROM c) SELECT count(*) FROM c",
                      "PRAGMA writable_schema = 1", "ATTACH 'x.db' AS x", "VACUUM"]:  # fmt: skip
        env.reset(options={"task": task})
        start = time.monotonic()
        _, reward, terminated, _, _ = env.step(statement)
        assert time.monotonic() - start <= 3.0, statement
        assert (reward, terminated) == (0.0, False)
        env.reset(options={"task": task})
        env.step(env.unwrapped.task_record(task).gold)
        assert env.step("submit")[1] == 1.0, statement
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.sqlite")}
    assert after == before


def test_conformance_sqlite():
    statements = ["SHOW TABLES", "SELECT 1", "SELECT count(*) FROM people", "submit", "USE singer"]
    make = functools.partial(gym.make, "ipr/InterCodeSQL-v0", split="all")
    tasks = [t.index for t in load_tasks() if t.db == "poker_player"][:3]
    check_conformance(
        make, tasks=tasks, action_sampler=lambda info, rng: rng.choice(statements), malformed=()
    )


def test_use_of_an_unknown_database_keeps_the_current_one():
    env = gym.make("ipr/InterCodeSQL-v0", split="all")
    task = next(t for t in load_tasks() if t.db == "poker_player")
    env.reset(options={"task": task.index})
    obs, *_ = env.step("USE nowhere")
    assert obs == "Error executing query: Unknown database 'nowhere'"
    obs, *_ = env.step("SELECT count(*) FROM people")
    assert obs == "[(7,)]"
    env.step(task.gold)
    assert env.step("submit")[1] == 1.0


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT randomblob(1e9)",
        "SELECT zeroblob(1e8)",
        "SELECT zeroblob(900000) FROM people, people AS b",
    ],
)
def test_huge_values_fail_fast_with_a_small_observation(statement):
    env = gym.make("ipr/InterCodeSQL-v0", split="all", timeout_s=2.0)
    task = next(t.index for t in load_tasks() if t.db == "poker_player")
    env.reset(options={"task": task})
    start = time.monotonic()
    obs, reward, terminated, _, _ = env.step(statement)
    assert time.monotonic() - start <= 3.0
    assert obs.startswith("Error executing query: ") and len(obs) < 200, obs[:200]
    assert (reward, terminated) == (0.0, False)


def test_submitting_the_gold_scores_one_on_every_valid_task():
    """The gold runs through the same rewriting and row order as agent statements."""
    env = gym.make("ipr/InterCodeSQL-v0", split="all")
    below = []
    for task in load_tasks():
        env.reset(options={"task": task.index})
        obs, *_ = env.step(task.gold)
        if obs.startswith("Error executing query"):
            continue  # the golds SQLite cannot run (MySQL-only syntax)
        reward = env.step("submit")[1]
        if reward != 1.0:
            below.append((task.index, reward))
    assert below == []


def test_aliased_sum_and_avg_keep_mysqls_decimal_type(folder):
    backend = SQLiteBackend(folder)
    backend.start_episode("world_1")
    where = "FROM city WHERE countrycode = 'AFG'"
    plain = backend.run(f"SELECT sum(population), avg(population) {where}")
    aliased = backend.run(f"SELECT sum(population) AS total, AVG(city.Population) mean {where}")
    # as text, as the agent sees it (Decimal('2332100') == 2332100 in Python)
    expected = "[(Decimal('2332100'), Decimal('583025.0000'))]"
    assert plain.observation == aliased.observation == expected


WIDE = (  # 10,000 rows of 500 integer columns: 70 M characters as InterCode renders them
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) "
    "SELECT " + ", ".join(["i"] * 500) + " FROM n"
)
LONG_RESULTS = {  # statement: what InterCode's observation of it would be, in characters
    "SELECT zeroblob(490000) FROM people, people AS b LIMIT 40": 40 * 4 * 490000,  # \x00
    WIDE: 70_000_000,
}


@pytest.mark.parametrize("statement", list(LONG_RESULTS), ids=["blobs", "wide"])
def test_observations_are_bounded_by_their_rendered_length(statement):
    """One rule on both backends: the observation as rendered (rows x columns x
    characters), not only string values; the error names the option; reading stops early,
    so memory stays near the limit (tracemalloc's peak) however long the result."""
    limit = 100_000
    env = gym.make("ipr/InterCodeSQL-v0", split="all", max_observation_chars=limit)
    task = next(t.index for t in load_tasks() if t.db == "poker_player")
    env.reset(options={"task": task})
    env.step("SELECT 1")  # first-use imports and caches stay out of the measurement
    tracemalloc.start()
    try:
        obs, *_ = env.step(statement)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert LONG_RESULTS[statement] > 300 * limit
    assert obs == (
        f"Error executing query: the result is longer than {limit} characters "
        "(the env's max_observation_chars)"
    )
    assert peak < 20_000_000, peak  # a chunk of rows past the limit, not the 70-78 M characters
    obs, *_ = env.step("SELECT name FROM people LIMIT 2")  # short results are untouched
    assert obs.startswith("[('") and len(obs) < 100
    small = gym.make("ipr/InterCodeSQL-v0", split="all", max_observation_chars=len(obs))
    small.reset(options={"task": task})
    assert small.step("SELECT name FROM people LIMIT 2")[0] == obs  # the limit is inclusive
    assert "max_observation_chars" in small.step("SELECT name FROM people LIMIT 3")[0]


def test_a_long_result_on_mariadb_is_cut_while_it_streams(mariadb):
    limit = 100_000
    env = gym.make("ipr/InterCodeSQL-v0", backend="mysql", url=mariadb.url(), split="all",
                   max_observation_chars=limit)  # fmt: skip
    task = next(t.index for t in load_tasks() if t.db == "world_1")
    env.reset(options={"task": task})
    env.step("SELECT 1")  # first-use imports and caches stay out of the measurement
    tracemalloc.start()
    try:
        obs, *_ = env.step("SELECT REPEAT('x', 100000) FROM city")  # 408 M characters
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert obs == (
        f"Error executing query: the result is longer than {limit} characters "
        "(the env's max_observation_chars)"
    )
    assert peak < 20_000_000, peak  # the whole result is 408 MB
    assert env.step("SELECT COUNT(*) FROM city")[0] == "[(4079,)]"  # the session goes on
    env.close()
