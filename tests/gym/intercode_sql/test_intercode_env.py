"""ipr/InterCodeSQL-v0 on a real MariaDB: gold answers, the sandbox, the contract."""

import functools
import json
import threading
import time

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ipr_gym
from ipr_gym.intercode_sql.mysql_backend import MySQLBackend
from ipr_gym.intercode_sql.tasks import expert_episodes, load_tasks, published_episodes
from ipr_gym.testing.conformance import check_conformance

INVALID_GOLD = {164, 802, 178, 225, 531, 638}
TIMEOUT = 2.0


@pytest.fixture(scope="module")
def env(mariadb):
    env = ipr_gym.make(
        "ipr/InterCodeSQL-v0", backend="mysql", url=mariadb.url(), split="all",
        timeout_s=TIMEOUT, max_episode_steps=None,
    )  # fmt: skip
    yield env
    env.close()


def test_every_valid_gold_query_scores_one_against_itself(env):
    failing = []
    for task in env.unwrapped.tasks:
        env.reset(options={"task": task})
        env.step(env.unwrapped.task_record(task).gold)
        _, reward, terminated, _, _ = env.step("submit")
        assert terminated
        if reward != 1.0:
            failing.append(task)
    assert set(failing) == INVALID_GOLD


def test_published_gpt4_episodes_that_reached_one_still_do(env):
    experts = expert_episodes("gpt-4")
    assert len(experts) == 762
    rewards = []
    for task, actions in list(experts.items())[::25]:
        env.reset(options={"task": task})
        for action in actions:
            _, reward, *_ = env.step(action)
        rewards.append(reward)
    # MySQL 8 vs MariaDB and DESCRIBE output can differ, so a few may not; most must
    assert sum(r == 1.0 for r in rewards) >= 0.9 * len(rewards)


ADVERSARIAL = [
    "DROP TABLE people",
    "DELETE FROM people",
    "UPDATE people SET Name = 'x'",
    "INSERT INTO people VALUES (99, 'x', 'y', 'z', 1)",
    "CREATE TABLE t (x int)",
    "ALTER TABLE people ADD COLUMN y int",
    "TRUNCATE people",
    "GRANT ALL ON *.* TO 'agent'@'localhost'",
    "CREATE DATABASE evil",
    "SET SESSION max_statement_time = 0",
    "SET PASSWORD = PASSWORD('stolen')",
    "SELECT SLEEP(30)",
    "SELECT BENCHMARK(1000000000, MD5('x'))",
    "SELECT COUNT(*) FROM people a, people b, people c, people d, people e, people f",
    "SELECT * FROM people a, people b, people c, people d, people e, people f",
    "LOAD DATA INFILE '/etc/passwd' INTO TABLE people",
    "SELECT * FROM people INTO OUTFILE '/tmp/ipr-leak'",
    "SELECT LOAD_FILE('/etc/passwd')",
    "COMMIT",
    "ROLLBACK",
    "START TRANSACTION",
    "LOCK TABLES people WRITE",
    "/*!50000 DROP TABLE people */",
    "SELECT 1; DROP TABLE people",
    "HANDLER people OPEN",
    "DO SLEEP(30)",
    "KILL 1",
    "SHUTDOWN",
    "FLUSH PRIVILEGES",
]


def _checksums(mariadb):
    import pymysql

    root = pymysql.connect(unix_socket=mariadb.socket, user="root", password=mariadb.root_password)
    sums = {}
    with root.cursor() as cur:
        for db in mariadb.databases:
            cur.execute(f"SHOW TABLES FROM `{db}`")
            for (table,) in cur.fetchall():
                cur.execute(f"CHECKSUM TABLE `{db}`.`{table}`")
                sums[(db, table)] = cur.fetchone()[1]
        cur.execute("SELECT user, host FROM mysql.user ORDER BY user, host")
        sums["users"] = cur.fetchall()
        cur.execute("SHOW DATABASES")
        sums["databases"] = cur.fetchall()
    root.close()
    return sums


def test_adversarial_statements_are_contained(env, mariadb):
    before = _checksums(mariadb)
    task = next(t for t in env.unwrapped.tasks if env.unwrapped.task_record(t).db == "poker_player")
    for statement in ADVERSARIAL:
        env.reset(options={"task": task})
        start = time.monotonic()
        obs, reward, terminated, _, info = env.step(statement)
        assert time.monotonic() - start <= TIMEOUT + 1, statement
        assert not terminated and reward == 0.0
        if statement.startswith("SELECT COUNT(*)"):
            assert obs == "[(117649,)]"  # allowed: a read of 7**6 rows counted, small result
        elif statement.startswith("SELECT LOAD_FILE"):
            assert obs == "[(None,)]"  # no FILE privilege: nothing is read
        elif not statement.startswith("SELECT BENCHMARK"):  # may stop early with 0
            assert obs.startswith("Error executing query: "), (statement, obs)
            assert info["invalid"]
        # the next episode is unaffected
        env.reset(options={"task": task})
        env.step(env.unwrapped.task_record(task).gold)
        assert env.step("submit")[1] == 1.0, statement
    assert _checksums(mariadb) == before


# statements that read what a session did before: a continued episode would see its
# history, a restored one a fresh session's, so the sandbox refuses them
SESSION_READS = [
    "SELECT SQL_CALC_FOUND_ROWS * FROM people LIMIT 1",
    "SELECT FOUND_ROWS()",
    "SELECT 1/0",
    "SHOW WARNINGS",
    "SHOW COUNT(*) WARNINGS",
    "SELECT @@warning_count, @@error_count",
    "SELECT ROW_COUNT()",
    "SHOW SESSION STATUS LIKE 'Com_select'",
    "SELECT * FROM information_schema.SESSION_STATUS",
]


def test_conformance(mariadb):
    statements = ["SHOW TABLES", "SELECT 1", "SELECT COUNT(*) FROM people", "submit", "USE singer",
                  *SESSION_READS]  # fmt: skip

    def sampler(info, rng):
        return rng.choice(statements)

    make = functools.partial(
        gym.make, "ipr/InterCodeSQL-v0", backend="mysql", url=mariadb.url(), split="all"
    )
    tasks = [t.index for t in load_tasks() if t.db == "poker_player"][:3]
    # every string is an SQL statement here, and an error replaces the answer that
    # `submit` scores (as in InterCode), so the malformed-action check does not apply
    check_conformance(make, tasks=tasks, action_sampler=sampler, malformed=(), n_walks=6)


def test_snapshot_carries_the_current_database_and_last_answer(env):
    env.reset(options={"task": 0})
    env.step("USE world_1")
    env.step("SELECT COUNT(*) FROM city")
    snap = env.snapshot()
    env.reset(options={"task": 0})
    obs, _ = env.restore(snap)
    assert obs == "[(4079,)]"
    assert env.step("SELECT COUNT(*) FROM country")[0] == "[(239,)]"


def test_missing_server_url_is_explained(monkeypatch):
    monkeypatch.delenv("IPR_INTERCODE_MYSQL_URL", raising=False)
    with pytest.raises(ValueError, match="ipr-gym sql-server"):
        gym.make("ipr/InterCodeSQL-v0", backend="mysql")


@pytest.mark.parametrize("server_limit", [True, False])
def test_the_time_limit_holds_with_and_without_the_servers_own(mariadb, server_limit):
    """Without MariaDB's max_statement_time the watchdog's KILL alone ends the statement,
    and the connection serves the next one."""
    backend = MySQLBackend(mariadb.url(), timeout_s=1.0, server_limit=server_limit)
    try:
        for _ in range(3):
            backend.start_episode("poker_player")
            start = time.monotonic()
            result = backend.run("SELECT SLEEP(30)")
            assert time.monotonic() - start <= 2.0
            assert result.rows is None and "interrupted" in result.error
            if not server_limit:
                assert "max_statement_time" not in result.error  # the watchdog's kill
            assert backend.run("SELECT COUNT(*) FROM people").rows == ((7,),)
    finally:
        backend.close()


def _running_agent_statements(mariadb) -> int:
    import pymysql

    root = pymysql.connect(unix_socket=mariadb.socket, user="root", password=mariadb.root_password)
    with root.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'agent' "
            "AND (INFO IS NOT NULL OR COMMAND = 'Killed')"
        )
        (count,) = cur.fetchone()
    root.close()
    return count


@pytest.mark.parametrize("server_limit", [True, False])
def test_a_statement_over_the_limit_is_gone_from_the_server_when_the_step_returns(
    mariadb, server_limit
):
    """Each answers within the documented bound (timeout_s + 3 s) with nothing left running:
    a sleep, a cross join, a REGEXP join, all interrupted; the spatial statement the server
    cannot interrupt (it ran on for minutes after KILL QUERY and KILL CONNECTION) is refused
    before it starts."""
    backend = MySQLBackend(mariadb.url(), timeout_s=1.0, server_limit=server_limit)
    try:
        backend.start_episode("world_1")
        cross = "SELECT COUNT(*) FROM city a, city b, city c"
        regexp = ("SELECT COUNT(*) FROM city a, city b, city c WHERE CONCAT(a.Name, b.Name, "
                  "c.Name) REGEXP '(a|b|c|d)+(e|f)*x$'")  # fmt: skip
        for statement in ("SELECT SLEEP(30)", cross, regexp):
            start = time.monotonic()
            result = backend.run(statement)
            assert time.monotonic() - start <= 1.0 + 3.0, statement
            assert "interrupted" in result.error, (statement, result)
            assert _running_agent_statements(mariadb) == 0, statement
        start = time.monotonic()
        result = backend.run(GIS)
        assert time.monotonic() - start < 0.5
        assert "ST_AREA is not allowed: spatial functions" in result.error
        assert _running_agent_statements(mariadb) == 0
    finally:
        backend.close()


GIS = (  # a buffer around a 57,600-point line: minutes of server time, deaf to KILL
    "SELECT ST_Area(ST_Buffer(ST_GeomFromText(CONCAT('LINESTRING(', (SELECT GROUP_CONCAT("
    "CONCAT(a.ID, ' ', b.ID * 7 % 13)) FROM world_1.city a, world_1.city b WHERE a.ID <= 240 "
    "AND b.ID <= 240), ')')), 5))"
)


@pytest.mark.parametrize("spelled", ["ST_Buffer", "`st_buffer`", "Buffer", "GeomFromText",
                                     "MBRContains", "ST_Union", "Point"])  # fmt: skip
def test_spatial_functions_are_refused_in_any_spelling(env, spelled):
    env.reset(options={"task": 0})
    obs, _, _, _, info = env.step(f"SELECT {spelled} /**/ (1)")
    assert "spatial functions cannot be interrupted" in obs and info["invalid"], obs


SESSION_CHANGES = [
    "SELECT @x := 1",
    "SELECT 1 INTO @x",
    "SELECT 1 INTO@x",
    "SELECT 1 INTO/**/@x",
    "SELECT 1--1 INTO @x",
    "SELECT LAST_INSERT_ID(5)",
    "SELECT GET_LOCK('ipr', 0)",
    "ipr: BEGIN NOT ATOMIC SET @x = 1; END",
    "IF 1 THEN SELECT GET_LOCK('ipr', 0); END IF",
    "WHILE 0 DO SET @x = 1; END WHILE",
]


def test_no_session_state_survives_reset_or_restore_or_reaches_another_env(env, mariadb):
    other = gym.make("ipr/InterCodeSQL-v0", backend="mysql", url=mariadb.url(), split="all")
    probe = "SELECT @x, LAST_INSERT_ID(), IS_USED_LOCK('ipr')"
    env.reset(options={"task": 0})
    for statement in SESSION_CHANGES:
        obs, reward, terminated, _, info = env.step(statement)
        assert obs.startswith("Error executing query: ") and info["invalid"], (statement, obs)
        assert (reward, terminated) == (0.0, False)
    assert env.step(probe)[0] == "[(None, 0, None)]"
    snap = env.snapshot()
    env.reset(options={"task": 0})
    assert env.step(probe)[0] == "[(None, 0, None)]"
    env.restore(snap)
    assert env.step(probe)[0] == "[(None, 0, None)]"  # as a replay of the prefix gives
    other.reset(options={"task": 0})
    assert other.step("SELECT IS_FREE_LOCK('ipr')")[0] == "[(1,)]"
    other.close()


def test_reads_of_the_sessions_past_are_refused_so_restore_equals_replay(env):
    env.reset(options={"task": 0})
    for statement in SESSION_READS:
        obs, _, _, _, info = env.step(statement)
        if statement.startswith(("SELECT SQL_CALC", "SELECT 1/0")):
            assert not obs.startswith("Error executing query: "), (statement, obs)
        else:
            assert obs.startswith("Error executing query: ") and "not allowed" in obs, statement
            assert info["invalid"]


# what may stand between a built-in's name and its parenthesis, the server still calling it
GAPS = ["", " ", "  ", "\t", "\n", "/**/", "/* x */", " /*x*/ ", "-- c\n", "#c\n"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    name=st.sampled_from(["GET_LOCK", "LAST_INSERT_ID", "RELEASE_LOCK", "FOUND_ROWS"]),
    case=st.lists(st.booleans(), min_size=16, max_size=16),
    quoted=st.booleans(),
    gap=st.sampled_from(GAPS),
)
def test_refused_built_ins_are_refused_in_every_spelling_the_server_runs(
    env, mariadb, name, case, quoted, gap
):
    """Any case, backtick-quoted or not, spaces or comments before the parenthesis (the
    server runs such spellings: the next test): the sandbox answers an error and the lock is
    free, the id unset."""
    spelled = "".join(c.upper() if up else c.lower() for c, up in zip(name, case, strict=False))
    spelled = f"`{spelled}`" if quoted else spelled
    args = {"GET_LOCK": "('ipr-prop', 0)", "LAST_INSERT_ID": "(424242)",
            "RELEASE_LOCK": "('ipr-prop')", "FOUND_ROWS": "()"}[name]  # fmt: skip
    env.reset(options={"task": 0})
    obs, *_ = env.step(f"SELECT {spelled}{gap}{args}")
    assert obs.startswith("Error executing query: ") and "not allowed" in obs, obs
    assert env.step("SELECT LAST_INSERT_ID(), IS_FREE_LOCK('ipr-prop')")[0] == "[(0, 1)]"


def test_the_server_itself_runs_quoted_and_spaced_built_ins(mariadb):
    """What the filter must catch: past it, these spellings hold the lock or set the id."""
    backend = MySQLBackend(mariadb.url())
    try:
        backend.start_episode("poker_player")
        for gap in GAPS:
            assert backend.query(f"SELECT `get_LOCK`{gap}('ipr-raw', 0)").rows == ((1,),), gap
            assert backend.query(f"SELECT `LAST_insert_id`{gap}(7)").rows == ((7,),), gap
    finally:
        backend.close()


def test_one_env_cannot_see_anothers_statements_or_the_accounts_password(env, mariadb):
    other = gym.make("ipr/InterCodeSQL-v0", backend="mysql", url=mariadb.url(), split="all",
                     timeout_s=TIMEOUT)  # fmt: skip
    other.reset(options={"task": 0})
    env.reset(options={"task": 0})
    running = threading.Thread(target=other.step, args=("SELECT SLEEP(1), 'ipr-secret'",))
    running.start()
    try:
        time.sleep(0.3)
        for statement in ["SELECT INFO FROM information_schema.PROCESSLIST",
                          "SELECT * FROM information_schema.`processlist`", "SHOW PROCESSLIST",
                          "SHOW FULL PROCESSLIST", "SHOW GRANTS",
                          "SHOW GRANTS FOR CURRENT_USER()", "SHOW CREATE USER agent"]:  # fmt: skip
            obs, _, _, _, info = env.step(statement)
            assert obs.startswith("Error executing query: ") and "not allowed" in obs, obs
            assert "ipr-secret" not in obs and "*" not in obs and info["invalid"]
    finally:
        running.join()
        other.close()


def test_a_new_episode_starts_a_fresh_server_session(mariadb):
    """Past the filter (as a statement it misses would be), session state is set; the next
    episode's session has none of it and holds no lock."""
    backend, other = MySQLBackend(mariadb.url()), MySQLBackend(mariadb.url())
    try:
        backend.start_episode("poker_player")
        backend.query("SET @x = 1")
        assert backend.query("SELECT GET_LOCK('ipr-held', 0)").rows == ((1,),)
        other.start_episode("poker_player")
        assert other.query("SELECT IS_FREE_LOCK('ipr-held')").rows == ((0,),)
        backend.start_episode("poker_player")
        assert backend.query("SELECT @x").rows == ((None,),)
        assert other.query("SELECT IS_FREE_LOCK('ipr-held')").rows == ((1,),)
        assert backend.query("SELECT COUNT(*) FROM people").rows == ((7,),)
    finally:
        backend.close()
        other.close()


def test_odd_text_input_is_answered_not_raised(env):
    env.reset(options={"task": 0})
    start = time.monotonic()
    obs, *_ = env.step("SELECT 1" + " " * 20_000_000)
    assert time.monotonic() - start < 1.0
    assert obs.startswith("Error executing query: the statement is 20000008 characters long")
    obs, *_ = env.step("SELECT 'caf\ud800'")  # a lone surrogate: not encodable as UTF-8
    assert obs.startswith("Error executing query: the statement is not valid text")
    obs, *_ = env.step("I think the answer is 5")  # not SQL: the server's syntax error
    assert obs.startswith("Error executing query: You have an error in your SQL syntax")
    assert "near 'I think the answer is 5'" in obs


def test_the_private_server_has_no_account_without_a_password(mariadb):
    import pymysql

    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", password="")
    root = pymysql.connect(unix_socket=mariadb.socket, user="root", password=mariadb.root_password)
    with root.cursor() as cur:
        cur.execute("SELECT user, host, priv FROM mysql.global_priv")
        accounts = {(user, host): json.loads(priv) for user, host, priv in cur.fetchall()}
    root.close()
    open_accounts = [
        account
        for account, priv in accounts.items()
        if not priv.get("authentication_string") and not priv.get("account_locked")
    ]
    assert open_accounts == [] and ("agent", "127.0.0.1") in accounts


def test_mariadb_answers_as_the_recorded_mysql_8_of_intercodes_gpt4_episodes(env):
    """Every published GPT-4 step replayed: observations equal InterCode's MySQL 8 recording
    on >= 90% of steps; DESCRIBE and unknown-column errors, which MariaDB words
    differently, match on nearly all of them, syntax errors on most."""
    kinds = {"describe": [0, 0], "unknown column": [0, 0], "syntax": [0, 0]}
    equal = total = 0
    for index, episode in published_episodes("gpt-4").items():
        history = episode["turn_history"]
        env.reset(options={"task": index})
        for action, recorded in zip(history["actions"], history["observations"], strict=False):
            if action == "submit":
                break
            ours, *_ = env.step(action)
            recorded = str(recorded)
            total += 1
            equal += ours == recorded
            kind = (
                "describe" if action.lower().startswith(("describe", "show columns"))
                else "unknown column" if "Unknown column" in recorded
                else "syntax" if "error in your SQL syntax" in recorded
                else None
            )  # fmt: skip
            if kind:
                kinds[kind][0] += ours == recorded
                kinds[kind][1] += 1
    assert total > 5000 and equal / total >= 0.90, equal / total
    for kind, (same, seen) in kinds.items():  # syntax: the parsers stop at other points
        assert seen >= 50 and same / seen >= (0.8 if kind == "syntax" else 0.95), (kind, seen)
    env.reset(options={"task": 0})
    assert env.step("USE world_1")[0] == "None"  # no result set: InterCode shows None


def test_mysql_8_error_texts():
    from ipr_gym.intercode_sql.mysql8 import error_text

    assert error_text("Unknown column 'x' in 'SELECT'", "") == "Unknown column 'x' in 'field list'"
    assert error_text("Unknown column 't.a' in 'ON'", "") == "Unknown column 't.a' in 'on clause'"
    assert error_text("Column 'id' in WHERE is ambiguous", "") == (
        "Column 'id' in where clause is ambiguous"
    )
    statement = "SELECT a FROM t WHERE ) " + "x" * 100
    mariadb = (
        "You have an error in your SQL syntax; check the manual that corresponds to your "
        f"MariaDB server version for the right syntax to use near '{statement[22:99]}...' at "
        "line 1"
    )
    assert error_text(mariadb, statement) == (
        "You have an error in your SQL syntax; check the manual that corresponds to your "
        f"MySQL server version for the right syntax to use near '{statement[22:102]}' at line 1"
    )
