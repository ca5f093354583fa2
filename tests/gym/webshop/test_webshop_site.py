"""The WebShop site over real HTTP (a werkzeug server on a loopback port) and in headless
Chromium (Debian's chromium + chromedriver, installed by .ci/run)."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("flask")
from werkzeug.serving import make_server

from ipr_gym.webshop.env import WebShopEnv
from ipr_gym.webshop.site import create_app


@pytest.fixture(scope="module")
def site():
    env = WebShopEnv(split="all", progress=True)
    server = make_server("127.0.0.1", 0, create_app(env), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", env
    server.shutdown()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def call(url, method="GET", body=None, raw=None, follow=True):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), err.headers


def test_api_plays_an_episode_like_the_env(site):
    base, env = site
    task = env.tasks[3]
    status, text, _ = call(f"{base}/api/sessions", "POST", {"task": task})
    assert status == 201
    started = json.loads(text)
    obs, info = env.reset(options={"task": task})
    assert started["observation"] == obs and started["valid_actions"] == info["valid_actions"]
    sid = started["session"]
    for action in env.expert_actions(task):
        obs, reward, done, _, info = env.step(action)
        status, text, _ = call(f"{base}/api/sessions/{sid}/step", "POST", {"action": action})
        assert status == 200, text
        got = json.loads(text)
        assert got["observation"] == obs and got["valid_actions"] == info["valid_actions"]
        assert got["progress"] == info["progress"] and got["done"] == done
    assert got["reward"] == reward == 1.0
    # a finished session takes no more actions
    status, _, _ = call(f"{base}/api/sessions/{sid}/step", "POST", {"action": "search[x]"})
    assert status == 409


@pytest.mark.parametrize(
    ("path", "method", "body", "code"),
    [
        ("/api/sessions/nope", "GET", None, 404),
        ("/api/sessions/nope/step", "POST", {"action": "search[x]"}, 404),
        ("/api/sessions", "POST", {"task": 10**9}, 404),
        ("/api/sessions", "POST", {"task": "abc"}, 400),
        ("/api/sessions", "POST", [1, 2], 400),
        ("/s/nope", "GET", None, 404),
        ("/s/nope/do?action=click%5BBuy%20Now%5D", "GET", None, 404),
        ("/no/such/page", "GET", None, 404),
    ],
)
def test_bad_requests_are_4xx(site, path, method, body, code):
    base, _ = site
    status, text, _ = call(base + path, method, body)
    assert status == code, text


def test_bad_actions_leave_the_session_unchanged(site):
    base, _ = site
    _, text, _ = call(f"{base}/api/sessions", "POST", {"task": 0})
    sid = json.loads(text)["session"]
    call(f"{base}/api/sessions/{sid}/step", "POST", {"action": "search[shoes]"})
    _, before, _ = call(f"{base}/api/sessions/{sid}")
    bad = [
        (f"/s/{sid}/do?action=" + urllib.parse.quote("click[B0NOSUCH00]"), "GET", None, 400),
        (f"/s/{sid}/do?search=" + "x" * 5000, "GET", None, 413),
        (f"/s/{sid}/do?search=%5Bbad%5D", "GET", None, 400),
        (f"/s/{sid}/do?search=%20%20", "GET", None, 400),
        (f"/s/{sid}/do", "GET", None, 400),
        (f"/api/sessions/{sid}/step", "POST", {"action": "click[B0NOSUCH00]"}, 422),
        (f"/api/sessions/{sid}/step", "POST", {"action": 5}, 400),
        (f"/api/sessions/{sid}/step", "POST", {"act": "x"}, 400),
        (f"/api/sessions/{sid}/step", "POST", {"action": "search[" + "y" * 100_000 + "]"}, 413),
    ]
    for path, method, body, code in bad:
        status, text, _ = call(base + path, method, body)
        assert status == code, (path[:80], status, text[:200])
    status, _, _ = call(f"{base}/api/sessions/{sid}/step", "POST", raw=b"{not json")
    assert status == 400
    _, after, _ = call(f"{base}/api/sessions/{sid}")
    assert after == before


def test_pages_follow_links_over_http(site):
    base, env = site
    task = env.tasks[5]
    status, _, headers = call(f"{base}/?task={task}", follow=False)
    assert status == 303
    page_url = base + headers["Location"]
    status, html, _ = call(page_url)
    assert status == 200 and env.goal(task).instruction in html and 'id="search_input"' in html
    query = env.expert_actions(task)[0][len("search[") : -1]
    status, html, _ = call(f"{page_url}/do?search={urllib.parse.quote(query)}")
    assert status == 200 and "Total results:" in html and env.goal(task).asin in html


def test_concurrent_sessions_are_isolated(site):
    base, env = site

    def play(task):
        _, text, _ = call(f"{base}/api/sessions", "POST", {"task": task})
        sid = json.loads(text)["session"]
        got = None
        for action in env.expert_actions(task):
            _, text, _ = call(f"{base}/api/sessions/{sid}/step", "POST", {"action": action})
            got = json.loads(text)
        return task, got["reward"], got["observation"]

    tasks = list(env.tasks[:24])
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(play, tasks))
    for task, reward, obs in results:
        assert reward == 1.0 and env.goal(task).asin in obs


CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def test_a_purchase_in_headless_chromium(site):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("Debian's chromium and chromium-driver are needed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    base, env = site
    task = next(t for t in env.tasks if len(env.goal(t).options) == 2)
    goal = env.goal(task)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(10)  # each click loads a new page; finds wait for it
    try:
        driver.get(f"{base}/?task={task}")
        assert goal.instruction in driver.find_element(By.ID, "instruction-text").text
        box = driver.find_element(By.ID, "search_input")
        box.send_keys(env.expert_actions(task)[0][len("search[") : -1])
        box.submit()
        driver.find_element(By.LINK_TEXT, goal.asin).click()
        assert driver.find_element(By.ID, "product-title").text == goal.name
        for value in goal.option_values:
            label = driver.find_element(By.XPATH, f"//label[normalize-space()='{value}']")
            radio = label.get_attribute("for")
            label.click()  # the page reloads with the option chosen
            WebDriverWait(driver, 10).until(staleness_of(label))
            assert driver.find_element(By.ID, radio).is_selected()
        driver.find_element(By.XPATH, "//button[normalize-space()='Buy Now']").click()
        reward = driver.find_element(By.CSS_SELECTOR, "#reward pre").text
        assert float(reward) == 1.0
    finally:
        driver.quit()
