"""Generation through any OpenAI-compatible chat server (vLLM serve, SGLang, ...), with
concurrent requests; plain HTTP, no client library needed."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ipr_train.policies.base import Conversation, GenerationParams, cut_at_stop


class OpenAIPolicy:
    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key: str | None = None,
        concurrency: int = 16,
        timeout_s: float = 300,
    ):
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY", "EMPTY")
        self.concurrency = concurrency
        self.timeout_s = timeout_s

    def _one(self, conversation: Conversation, params: GenerationParams) -> str:
        body: dict[str, Any] = {
            "model": self.model, "messages": list(conversation),
            "temperature": params.temperature, "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
        }  # fmt: skip
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
            answer = json.loads(resp.read())
        return cut_at_stop(answer["choices"][0]["message"]["content"] or "", params.stop)

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[str]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda c: self._one(c, params), conversations))
