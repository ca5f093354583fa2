"""The statement watchdog's ordering: a kill never outlives ``disarm``."""

import threading
import time

from ipr_gym.intercode_sql.mysql_backend import _Watchdog


def test_disarm_waits_for_a_kill_already_under_way():
    started, log = threading.Event(), []

    def slow_kill(thread_id, stage):
        started.set()
        time.sleep(0.3)  # a KILL on a slow guard connection
        log.append(("killed", thread_id, stage))

    dog = _Watchdog(slow_kill)
    try:
        dog.arm(7, 0.01)
        assert started.wait(2)
        dog.disarm()  # the statement ended on its own meanwhile
        log.append("disarmed")
        assert log == [("killed", 7, "QUERY"), "disarmed"]
        time.sleep(0.7)  # past the grace period: no second stage once disarmed
        assert log == [("killed", 7, "QUERY"), "disarmed"]
    finally:
        dog.stop()


def test_a_statement_past_its_limit_gets_query_then_connection_kills():
    log = []
    dog = _Watchdog(lambda thread_id, stage: log.append((thread_id, stage)))
    try:
        dog.arm(3, 0.05)
        time.sleep(0.05 + _Watchdog.GRACE_S + 0.3)
        assert log == [(3, "QUERY"), (3, "CONNECTION")]
        dog.disarm()
    finally:
        dog.stop()


def test_disarm_in_time_means_no_kill():
    log = []
    dog = _Watchdog(lambda thread_id, stage: log.append((thread_id, stage)))
    try:
        dog.arm(5, 0.2)
        dog.disarm()
        time.sleep(0.4)
        assert log == []
    finally:
        dog.stop()
