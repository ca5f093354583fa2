"""The OpenAI-compatible client against a chat-completions endpoint served over real HTTP.

No OpenAI-compatible model server runs on this machine (vLLM serve and SGLang need a GPU
build), so the endpoint here is the tiny model behind a minimal server that speaks the
chat-completions protocol; the test pins what the client sends and how it reads answers.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ipr_train.policies import GenerationParams, make_policy
from ipr_train.policies.hf import HFPolicy


def test_openai_backend_talks_chat_completions(tiny_dir):
    model = HFPolicy(str(tiny_dir), device="cpu")
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers["Authorization"], body))
            params = GenerationParams(
                max_new_tokens=body["max_tokens"], stop=tuple(body.get("stop", ()))
            )
            (text,) = model.generate([body["messages"]], params)
            answer = {"choices": [{"message": {"role": "assistant", "content": text}}]}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        policy = make_policy({"backend": "openai", "model": "tiny", "api_key": "k",
                              "base_url": f"http://127.0.0.1:{server.server_port}/v1"})  # fmt: skip
        conversations = [[{"role": "user", "content": f"question {i}"}] for i in range(3)]
        params = GenerationParams(max_new_tokens=8, stop=("Observation:",), seed=3)
        replies = policy.generate(conversations, params)
        direct = model.generate(
            conversations, GenerationParams(max_new_tokens=8, stop=("Observation:",))
        )
        assert replies == direct  # greedy: the same text through the server
        paths = {p for p, _, _ in seen}
        assert paths == {"/v1/chat/completions"} and all(a == "Bearer k" for _, a, _ in seen)
        body = seen[0][2]
        assert body["model"] == "tiny" and body["temperature"] == 0.0 and body["seed"] == 3
        assert body["stop"] == ["Observation:"] and body["max_tokens"] == 8
    finally:
        server.shutdown()
