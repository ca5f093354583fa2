"""The envs as OpenEnv servers: the contract through the client, branching across server
processes, signed tokens, and refusals that stay with the request that caused them."""

from __future__ import annotations

import functools
import json
import random
import time

import gymnasium as gym
import pytest
import requests

import ipr_gym
from ipr_gym.core import EpisodeError, ServerToken
from ipr_gym.service.client import IPRClient, SessionLostError, TokenRefusedError
from ipr_gym.service.process import start_server
from ipr_gym.service.tokens import Point, Signer
from ipr_gym.service.wire import TextAction
from ipr_gym.testing.conformance import MALFORMED_ACTIONS, check_conformance, play, random_walks

KEY = "a key shared by the test servers, 32+ bytes"
WEBSHOP = {"catalog": "fixture", "split": "all"}
WORDS = ["shampoo", "console table", "dress", "eye cream", "razor", "jeans", "coffee"]
NOT_MALFORMED_IN_WEBSHOP = [a for a in MALFORMED_ACTIONS if a != "search[]]"]


def webshop_sampler(info, rng):
    valid = info.get("valid_actions") or []
    if not valid or rng.random() < 0.15:
        return f"search[{rng.choice(WORDS)}]"
    return rng.choice(valid)


def sql_sampler(info, rng):
    return rng.choice(["SHOW TABLES", "SELECT 1", "SELECT COUNT(*) FROM people", "submit",
                       "SELECT Name FROM people LIMIT 3", "USE singer"])  # fmt: skip


def serve(env_id, options, *args, key=KEY, installed_data=None):
    flags = [f"--option={k}={json.dumps(v)}" for k, v in options.items()]
    env = {"IPR_GYM_SERVE_KEY": key, "IPR_GYM_DATA": str(installed_data)}
    return start_server(env_id, *flags, *args, env=env)


@pytest.fixture(scope="module")
def webshop(installed_data):
    with serve("ipr/WebShop-v0", WEBSHOP, installed_data=installed_data) as server:
        yield server


@pytest.fixture(scope="module")
def webshop_twin(installed_data):
    """A second server process with the same key."""
    with serve("ipr/WebShop-v0", WEBSHOP, installed_data=installed_data) as server:
        yield server


def remote(server, env_id="ipr/WebShop-v0", **options):
    return functools.partial(gym.make, env_id, remote=server.url, **(options or WEBSHOP))


def test_webshop_server_passes_the_conformance_kit(webshop):
    check_conformance(remote(webshop), action_sampler=webshop_sampler,
                      malformed=NOT_MALFORMED_IN_WEBSHOP, n_walks=8)  # fmt: skip


@pytest.mark.parametrize(
    ("env_id", "options", "sampler"),
    [("ipr/WebShop-v0", WEBSHOP, webshop_sampler),
     ("ipr/InterCodeSQL-v0", {"split": "all"}, sql_sampler),
     ("ipr/ALFWorld-v0", {"split": "valid_seen"}, None)],
)  # fmt: skip
def test_transcripts_over_the_wire_equal_the_env_in_process(
    env_id, options, sampler, installed_data, monkeypatch
):
    monkeypatch.setenv("IPR_GYM_DATA", str(installed_data))
    local = functools.partial(gym.make, env_id, **options)
    tasks = list(ipr_gym.core.find_text_env(local()).tasks)[:40]
    walks = random_walks(local, n_walks=4, max_length=12, seed=1, tasks=tasks,
                         action_sampler=sampler)  # fmt: skip
    with serve(env_id, options, installed_data=installed_data) as server:
        here, there = local(), remote(server, env_id, **options)()
        for walk in walks:
            assert play(there, walk.task, walk.actions) == play(here, walk.task, walk.actions)
        there.close()


@pytest.mark.parametrize(
    ("env_id", "options", "sampler", "malformed"),
    [("ipr/InterCodeSQL-v0", {"split": "all"}, sql_sampler, ()),
     ("ipr/ALFWorld-v0", {"split": "valid_seen"}, None, MALFORMED_ACTIONS)],
)  # fmt: skip
def test_sql_and_alfworld_servers_pass_the_conformance_kit(
    env_id, options, sampler, malformed, installed_data, monkeypatch
):
    monkeypatch.setenv("IPR_GYM_DATA", str(installed_data))
    with serve(env_id, options, installed_data=installed_data) as server:
        tasks = list(ipr_gym.core.find_text_env(remote(server, env_id, **options)()).tasks)[:5]
        check_conformance(remote(server, env_id, **options), tasks=tasks,
                          action_sampler=sampler, malformed=malformed, n_walks=6)  # fmt: skip


ENVS = [("ipr/WebShop-v0", WEBSHOP, webshop_sampler),
        ("ipr/InterCodeSQL-v0", {"split": "all"}, sql_sampler),
        ("ipr/ALFWorld-v0", {"split": "valid_seen"}, None)]  # fmt: skip


@pytest.mark.parametrize(("env_id", "options", "sampler"), ENVS, ids=["webshop", "sql", "alfworld"])
def test_every_env_restores_a_token_in_another_server_process_as_a_replay_would(
    env_id, options, sampler, installed_data, monkeypatch
):
    """Snapshots taken at random cuts of random walks on server A (tokens only: the other
    server has never seen them) restore on server B, and B goes on as the env in process."""
    monkeypatch.setenv("IPR_GYM_DATA", str(installed_data))
    local = functools.partial(gym.make, env_id, **options)
    tasks = list(ipr_gym.core.find_text_env(local()).tasks)[:20]
    walks = random_walks(local, n_walks=4, max_length=12, seed=2, tasks=tasks,
                         action_sampler=sampler)  # fmt: skip
    rng = random.Random(0)
    with (
        serve(env_id, options, installed_data=installed_data) as a,
        serve(env_id, options, installed_data=installed_data) as b,
    ):
        on_a, on_b, here = remote(a, env_id, **options)(), remote(b, env_id, **options)(), local()
        for walk in walks:
            cut = rng.randint(0, len(walk.actions))
            play(on_a, walk.task, walk.actions[:cut])
            snap = on_a.snapshot()
            assert isinstance(snap.state, ServerToken)
            expected = play(here, walk.task, walk.actions)
            got = [on_b.restore(snap), *(on_b.step(x) for x in walk.actions[cut:])]
            assert got == [(expected[cut][0], expected[cut][4]), *expected[cut + 1 :]]


def test_a_snapshot_restores_on_another_server_process_with_the_same_key(webshop, webshop_twin):
    a, b = remote(webshop)(), remote(webshop_twin)()
    a.reset(options={"task": 1})
    for action in ("search[dress]", "click[< Prev]", "search[jeans]"):
        a.step(action)
    snap = a.snapshot()
    assert isinstance(snap.state, ServerToken)
    a.step("click[back to search]")
    expected = [a.restore(snap), a.step("search[coffee]")]
    assert [b.restore(snap), b.step("search[coffee]")] == expected
    with IPRClient(webshop_twin.url).sync() as client:  # the token itself, without the env
        restored = client.reset(restore=snap.state.token).observation
        assert (restored.text, restored.info) == expected[0]
    local = gym.make("ipr/WebShop-v0", **WEBSHOP)  # a remote snapshot restores here by replay
    assert [local.restore(snap), local.step("search[coffee]")] == expected


def test_a_token_of_another_key_is_refused_and_the_env_replays_instead(webshop, installed_data):
    with serve("ipr/WebShop-v0", WEBSHOP, key="another key of 32 bytes or more....",
               installed_data=installed_data) as other:  # fmt: skip
        a, c = remote(webshop)(), remote(other)()
        a.reset(options={"task": 2})
        a.step("search[shampoo]")
        snap = a.snapshot()
        with IPRClient(other.url).sync() as client, pytest.raises(TokenRefusedError):
            client.reset(restore=snap.state.token)
        assert c.restore(snap) == a.restore(snap)
        assert c.step("click[< Prev]") == a.step("click[< Prev]")


def test_forged_and_tampered_tokens_are_refused(webshop):
    start = requests.post(f"{webshop.url}/reset", json={"task": 1}).json()["observation"]
    token = start["snapshot"]
    version, payload, mac = token.split(".")
    tampered = f"{version}.{payload[:-2]}{'AB' if payload[-2:] != 'AB' else 'CD'}.{mac}"
    forged = Signer(b"not the server's key, 32 bytes....").sign(
        Point("ipr/WebShop-v0", WEBSHOP, 1, ("search[dress]",))
    )
    for bad in (tampered, forged, "v1.e30.AAAA", "garbage", token + "x"):
        reply = requests.post(f"{webshop.url}/step", json={"action": {"action": "search[x]"},
                                                         "snapshot": bad})  # fmt: skip
        assert reply.status_code in (400, 403), (bad, reply.text)
        assert "\n" not in reply.json()["detail"]
    reply = requests.post(f"{webshop.url}/step", json={"action": {"action": "search[dress]"},
                                                     "snapshot": token})  # fmt: skip
    assert reply.status_code == 200
    assert reply.json()["observation"]["snapshot"].startswith("v1.")


def test_the_http_routes_chain_steps_through_tokens_as_a_session_does(webshop):
    actions = ["search[dress]", "click[< Prev]", "search[eye cream]"]
    env = remote(webshop)()
    expected = play(env, 3, actions)
    reply = requests.post(f"{webshop.url}/reset", json={"task": 3}).json()["observation"]
    got = [(reply["text"], reply["info"])]
    token = reply["snapshot"]
    for action in actions:
        reply = requests.post(f"{webshop.url}/step", json={"action": {"action": action},
                                                         "snapshot": token}).json()  # fmt: skip
        token = reply["observation"]["snapshot"]
        got.append((reply["observation"]["text"], reply["observation"]["info"]))
    assert got == [(step[0], step[-1]) for step in expected]


@pytest.mark.parametrize(
    ("route", "body", "status", "says"),
    [("/reset", {"task": 10_000}, 400, "unknown task 10000"),
     ("/reset", {"task": 1, "colour": "red"}, 400, "unknown reset field(s) ['colour']"),
     ("/reset", {"options": {"data_dir": "/etc"}}, 400, "set by the server"),
     ("/reset", {"options": {"catalog": "no-such-catalog"}}, 400, "cannot build"),
     ("/step", {"action": {"action": "search[x]"}}, 409, "no episode"),
     ("/step", {"action": {"action": "x" * 40_000}}, 422, "at most 32768 characters"),
     ("/step", {"action": {"text": "search[x]"}}, 422, "invalid action"),
     ("/reset", "{not json", 422, "invalid request")],
)  # fmt: skip
def test_bad_requests_are_4xx_with_one_line_and_other_sessions_go_on(
    webshop, route, body, status, says
):
    env, twin = remote(webshop)(), gym.make("ipr/WebShop-v0", **WEBSHOP)
    env.reset(options={"task": 4}), twin.reset(options={"task": 4})
    assert env.step("search[razor]") == twin.step("search[razor]")
    if isinstance(body, str):
        reply = requests.post(f"{webshop.url}{route}", data=body,
                              headers={"Content-Type": "application/json"})  # fmt: skip
    else:
        reply = requests.post(f"{webshop.url}{route}", json=body)
    assert reply.status_code == status, reply.text
    detail = reply.json()["detail"]
    assert says in detail and "\n" not in detail and len(detail) < 400
    assert env.step("click[< Prev]") == twin.step("click[< Prev]")  # the session is untouched


def test_the_client_raises_what_the_env_in_process_raises(webshop):
    with IPRClient(webshop.url).sync() as client:
        with pytest.raises(EpisodeError):
            client.step(TextAction(action="search[x]"))
        with pytest.raises(ValueError, match="unknown task"):
            client.reset(task=10_000)
        client.reset(task=1)
        with pytest.raises(ValueError, match="32768"):
            client.step(TextAction.model_construct(action="x" * 40_000))
        assert client.step(TextAction(action="search[dress]")).observation.info["step"] == 1


def test_sessions_are_limited_and_an_idle_one_is_closed(installed_data):
    with serve("ipr/WebShop-v0", WEBSHOP, "--max-sessions", "2", "--idle-timeout", "1",
               installed_data=installed_data) as server:  # fmt: skip
        first, second = IPRClient(server.url).sync(), IPRClient(server.url).sync()
        first.reset(task=1), second.reset(task=1)
        third = IPRClient(server.url).sync()
        with third, pytest.raises(SessionLostError, match="apacity"):
            third.reset(task=1)
        second.close()
        deadline = time.monotonic() + 30  # the reaper looks every 5 s at most
        with pytest.raises(SessionLostError):
            while time.monotonic() < deadline:
                first.state()
                time.sleep(1.5)
        with IPRClient(server.url).sync() as fresh:  # both places are free again
            assert fresh.reset(task=1).observation.info["step"] == 0


def test_the_gym_env_rejoins_a_session_the_server_closed_for_idleness(installed_data):
    with serve("ipr/WebShop-v0", WEBSHOP, "--idle-timeout", "1",
               installed_data=installed_data) as server:  # fmt: skip
        env, here = remote(server)(), gym.make("ipr/WebShop-v0", **WEBSHOP)
        actions = ["search[dress]", "click[< Prev]", "search[coffee]"]
        assert play(env, 2, actions[:2]) == play(here, 2, actions[:2])
        session = env.unwrapped._client
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the reaper has closed the session
            time.sleep(1.5)
            try:
                session.state()
            except SessionLostError:
                break
        else:
            pytest.fail("the idle session was never closed")
        assert env.step(actions[2]) == here.step(actions[2])  # in a new session
        assert env.unwrapped._client is not session
        assert env.restore(env.snapshot()) == here.restore(here.snapshot())


def test_a_forged_token_cannot_restore_through_the_gym_env_either(webshop):
    env = remote(webshop)()
    env.reset(options={"task": 1})
    env.step("search[dress]")
    snap = env.snapshot()
    forged = Signer(b"not the server's key, 32 bytes....").sign(
        Point("ipr/WebShop-v0", {"max_episode_steps": None, **WEBSHOP}, 1, ("search[jeans]",))
    )
    with IPRClient(webshop.url).sync() as client, pytest.raises(TokenRefusedError):
        client.reset(restore=forged)
    assert env.restore(snap) == (snap.observation, snap.info)  # the real token still works


def pool_run(pool, kill=None):
    """Reset 6 slots, branch two of them from a snapshot, step on; ``kill`` runs midway."""
    tasks = [1, 2, 3, 4, 5, 6]
    out = [pool.reset(range(6), tasks=tasks)]
    out.append(pool.step([(s, f"search[{WORDS[s]}]") for s in range(6)]))
    snap = pool.snapshot([0])[0]
    if kill is not None:
        kill()
    out.append(pool.step([(s, "click[< Prev]") for s in range(6)]))
    out.append(pool.restore([4, 5], [snap, snap]))
    out.append(pool.step([(s, f"search[{WORDS[-1 - s]}]") for s in range(6)]))
    return out


def test_a_pool_of_servers_plays_as_in_process_and_survives_a_server_killed_midway(
    installed_data,
):
    from ipr_gym.pool import EnvPool, SlotError

    with EnvPool("ipr/WebShop-v0", 6, workers=0, env_kwargs=WEBSHOP) as local:
        expected = pool_run(local)
    with (
        serve("ipr/WebShop-v0", WEBSHOP, installed_data=installed_data) as a,
        serve("ipr/WebShop-v0", WEBSHOP, installed_data=installed_data) as b,
    ):
        with EnvPool("ipr/WebShop-v0", 6, servers=[a.url, b.url], env_kwargs=WEBSHOP) as pool:
            assert pool_run(pool) == expected
            assert [w.url for w in pool._workers] == [a.url, b.url]
            got = pool_run(pool, kill=a.kill)  # slots 0, 2, 4 lived on a
            assert not any(isinstance(r, SlotError) for step in got for r in step)
            assert got == expected
            assert [w.url for w in pool._workers] == [b.url, b.url]
