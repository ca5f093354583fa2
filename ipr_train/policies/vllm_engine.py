"""Generation with vLLM's offline engine (``pip install 'ipr[vllm]'``; GPU vLLM pins its own
torch, so install it in an environment of its own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ipr_train.policies.base import Conversation, GenerationParams


class VLLMPolicy:
    def __init__(self, model: str, **engine_kwargs: Any):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError("backend 'vllm' needs vLLM: pip install 'ipr[vllm]'") from exc
        self.llm = LLM(model=model, **engine_kwargs)

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[str]:
        from vllm import SamplingParams

        sampling = SamplingParams(
            temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None, seed=params.seed,
        )  # fmt: skip
        outputs = self.llm.chat([list(c) for c in conversations], sampling, use_tqdm=False)
        return [o.outputs[0].text for o in outputs]
