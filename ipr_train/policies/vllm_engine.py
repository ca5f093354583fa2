"""Generation with vLLM's offline engine (``pip install 'ipr[vllm]'``; GPU vLLM pins its own
torch, so install it in an environment of its own).

All requests of a batch go to the engine at once, each with its own ``SamplingParams``
(``n`` samples, its own seed); automatic prefix caching is on by default, so the ``n``
samples of a request and the continuations of one prefix share their prompt's KV cache.
A prompt longer than the model's context is answered with an error instead of failing
the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ipr_train.policies.base import (
    Completion,
    Conversation,
    GenerationParams,
    Policy,
    prompt_ids,
)


class VLLMPolicy(Policy):
    def __init__(self, model: str, **engine_kwargs: Any):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError("backend 'vllm' needs vLLM: pip install 'ipr[vllm]'") from exc
        engine_kwargs.setdefault("enable_prefix_caching", True)
        self.llm = LLM(model=model, **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.context = int(self.llm.llm_engine.model_config.max_model_len)

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        """The engine's prompt: the same ids the HF backend generates from."""
        return prompt_ids(self.tokenizer, conversation)

    def complete(
        self, conversations: Sequence[Conversation], params: Sequence[GenerationParams]
    ) -> list[Completion]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        results: list[Completion | None] = [None] * len(conversations)
        prompts, sampling, where = [], [], []
        for i, (c, p) in enumerate(zip(conversations, params, strict=True)):
            ids = self.prompt_ids(c)
            if len(ids) >= self.context:
                results[i] = Completion(
                    prompt_tokens=len(ids),
                    error=f"prompt of {len(ids)} tokens does not fit the model's context "
                    f"of {self.context} tokens",
                )
                continue
            prompts.append(TokensPrompt(prompt_token_ids=list(ids)))
            sampling.append(SamplingParams(
                n=p.n, temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_new_tokens,
                stop=list(p.stop) or None, seed=p.seed, **p.extra,
            ))  # fmt: skip
            where.append(i)
        if prompts:
            outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
            for i, out in zip(where, outputs, strict=True):
                results[i] = Completion(
                    texts=tuple(o.text for o in out.outputs),
                    prompt_tokens=len(out.prompt_token_ids or ()),
                    generated_tokens=sum(len(o.token_ids) for o in out.outputs),
                )
        return [r if r is not None else Completion(error="no output") for r in results]
