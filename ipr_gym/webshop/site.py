"""The WebShop web site on the same engine: pages a person can shop in, and a JSON API.

Pages: ``/`` starts a session (``?task=N`` picks the goal, else a random one of the split)
and redirects to ``/s/<id>``, which shows the session's current page; every button, link
and option is ``/s/<id>/do?action=...`` (the search box sends ``?search=``), applied with
the engine's ``act`` exactly as the env applies it, then redirected back. API: ``POST
/api/sessions`` ``{"task"?}`` -> 201 with the first observation; ``GET /api/sessions/<id>``;
``POST /api/sessions/<id>/step`` ``{"action"}`` -> observation, reward, done, valid actions,
progress.

Bad input is a 4xx with a JSON or text reason, never a 500 and never a changed session:
unknown session 404, unknown task 404, an action the page does not offer (unknown asin,
absent button) 400 on pages / 422 on the API, a query over ``MAX_QUERY`` characters 413,
a malformed body 400, acting on a finished session 409. Sessions are independent objects
behind one lock; the oldest are dropped beyond ``max_sessions``.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ipr_gym.webshop.engine import valid_actions
from ipr_gym.webshop.env import WebShopEnv
from ipr_gym.webshop.html import MAX_QUERY, render_html
from ipr_gym.webshop.pages import observation
from ipr_gym.webshop.reward import GoalScorer
from ipr_gym.webshop.state import DONE, ShopState


@dataclass
class Session:
    task: int
    scorer: GoalScorer
    state: ShopState


class ActionRefused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Shopfront:
    """Sessions over one WebShop world; thread-safe."""

    def __init__(self, env: WebShopEnv, max_sessions: int = 10_000, seed: int | None = None):
        self.env = env
        self.world = env.world
        self.tasks = [int(t) for t in env.tasks]
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self._rng = random.Random(seed) if seed is not None else secrets.SystemRandom()

    def start(self, task: int | None = None) -> tuple[str, Session]:
        chosen = self._rng.choice(self.tasks) if task is None else task
        if chosen not in set(self.tasks):
            raise ActionRefused(404, f"unknown task {chosen!r} (the split has {len(self.tasks)})")
        session = Session(chosen, GoalScorer(self.world.goals[chosen]), ShopState())
        sid = secrets.token_urlsafe(12)
        with self._lock:
            self._sessions[sid] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return sid, session

    def get(self, sid: str) -> Session:
        with self._lock:
            session = self._sessions.get(sid)
        if session is None:
            raise ActionRefused(404, f"unknown session {sid[:40]!r}")
        return session

    def act(self, sid: str, action: str) -> tuple[Session, float, bool]:
        if len(action) > MAX_QUERY + 16:
            raise ActionRefused(413, f"action longer than {MAX_QUERY} characters")
        session = self.get(sid)
        with self._lock:
            if session.state.page == DONE:
                raise ActionRefused(409, "this session has ended; start a new one")
            outcome = self.world.shop.act(session.state, action, session.scorer)
            if not outcome.valid:
                raise ActionRefused(400, f"{action[:80]!r} is not possible on this page")
            session.state = outcome.state
        return session, outcome.reward, outcome.done

    def instruction(self, session: Session) -> str:
        return self.world.goals[session.task].instruction

    def describe(self, sid: str, session: Session) -> dict[str, Any]:
        products = self.world.catalog.by_asin
        return {
            "session": sid,
            "task": session.task,
            "instruction": self.instruction(session),
            "page": session.state.page,
            "observation": observation(session.state, self.instruction(session), products),
            "valid_actions": valid_actions(session.state, products, self.world.shop.show_attrs),
            "progress": self.world.shop.progress(session.state, session.scorer),
            "done": session.state.page == DONE,
            "reward": session.state.reward or 0.0,
        }


def create_app(env: WebShopEnv | None = None, max_sessions: int = 10_000) -> Any:
    """The Flask app over ``env``'s world (default: the embedded catalog, all goals)."""
    from flask import Flask, Response, jsonify, redirect, request

    front = Shopfront(env or WebShopEnv(split="all"), max_sessions=max_sessions)
    app = Flask("ipr_gym.webshop")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.extensions["ipr_shopfront"] = front

    def api(prefix: str) -> bool:
        return bool(request.path.startswith(prefix))

    @app.errorhandler(ActionRefused)
    def refused(error: ActionRefused) -> Any:
        if api("/api/"):
            return jsonify(error=error.reason), error.status
        return Response(error.reason, status=error.status, mimetype="text/plain")

    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(413)
    def http_error(error: Any) -> Any:
        if api("/api/"):
            return jsonify(error=error.description), error.code
        return Response(str(error.description), status=error.code, mimetype="text/plain")

    def task_arg(raw: Any) -> int | None:
        if raw is None:
            return None
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ActionRefused(400, f"task must be an integer, got {str(raw)[:40]!r}") from None

    @app.get("/")
    def index() -> Any:
        sid, _ = front.start(task_arg(request.args.get("task")))
        return redirect(f"/s/{sid}", code=303)

    @app.get("/s/<sid>")
    def page(sid: str) -> Any:
        session = front.get(sid)
        return render_html(
            session.state, front.instruction(session), front.world.catalog.by_asin,
            f"/s/{sid}", front.world.shop.show_attrs,
        )  # fmt: skip

    @app.get("/s/<sid>/do")
    def do(sid: str) -> Any:
        query, action = request.args.get("search"), request.args.get("action")
        if query is not None:
            if len(query) > MAX_QUERY:
                raise ActionRefused(413, f"search longer than {MAX_QUERY} characters")
            if not query.strip() or "[" in query or "]" in query:
                raise ActionRefused(400, "a search needs words and no brackets")
            action = f"search[{query}]"
        if not action:
            raise ActionRefused(400, "say what to do: ?action=click[...] or ?search=...")
        front.act(sid, action)
        return redirect(f"/s/{sid}", code=303)

    @app.post("/api/sessions")
    def api_start() -> Any:
        body = request.get_json(silent=True) if request.data else {}
        if not isinstance(body, dict):
            raise ActionRefused(400, "the body must be a JSON object")
        sid, session = front.start(task_arg(body.get("task")))
        return jsonify(front.describe(sid, session)), 201

    @app.get("/api/sessions/<sid>")
    def api_get(sid: str) -> Any:
        return jsonify(front.describe(sid, front.get(sid)))

    @app.post("/api/sessions/<sid>/step")
    def api_step(sid: str) -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            raise ActionRefused(400, 'the body must be {"action": "search[...]" or "click[...]"}')
        try:
            session, reward, _ = front.act(sid, body["action"])
        except ActionRefused as refusal:
            if refusal.status == 400:  # the env's "invalid action": state unchanged
                refusal.status = 422
            raise
        return jsonify(front.describe(sid, session) | {"step_reward": reward})

    return app


def serve(host: str = "127.0.0.1", port: int = 3000, **env_kwargs: Any) -> None:
    """Run the site with werkzeug's threaded server until interrupted."""
    from werkzeug.serving import run_simple

    env_kwargs.setdefault("split", "all")
    app = create_app(WebShopEnv(**env_kwargs))
    print(f"WebShop on http://{host}:{port}/ ({len(app.extensions['ipr_shopfront'].tasks)} goals)")
    run_simple(host, port, app, threaded=True)
