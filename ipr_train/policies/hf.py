"""Generation with transformers' ``generate`` (CPU or GPU), batched with left padding.

Sampling matches vLLM's defaults: no top-k (transformers would otherwise apply its implicit
``top_k=50``), ``top_p`` as given. Stop strings end generation as they are produced. Each
of a request's ``n`` samples is its own row; a batch of rows is seeded from the seeds of its
rows, so a rerun with the same seeds and batch composition gives the same samples, and the
rows of one batch (the ``n`` samples of a request among them) differ. A prompt longer than
the model's context is answered with an error, as vLLM does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ipr_train.policies.base import (
    Completion,
    Conversation,
    GenerationParams,
    Policy,
    chat_prompt,
    cut_at_stop,
    derive_seed,
    text_ids,
)


class HFPolicy(Policy):
    def __init__(self, model: Any, tokenizer: Any = None, device: str | None = None,
                 batch_size: int = 8, dtype: str | None = None):  # fmt: skip
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ipr_train.determinism import pin_threads

        pin_threads()
        if isinstance(model, str):
            kwargs = {"dtype": getattr(torch, dtype)} if dtype else {}
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            model = AutoModelForCausalLM.from_pretrained(model, **kwargs)
        if tokenizer is None:
            raise ValueError("pass the tokenizer with a model object")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.batch_size = batch_size
        self.context = int(getattr(model.config, "max_position_embeddings", 1 << 30))

    def complete(
        self, conversations: Sequence[Conversation], params: Sequence[GenerationParams]
    ) -> list[Completion]:
        prompts = [chat_prompt(self.tokenizer, c) for c in conversations]
        lengths = [len(text_ids(self.tokenizer, p)) for p in prompts]  # rendered once
        texts: list[list[str]] = [[] for _ in prompts]
        generated = [0] * len(prompts)
        errors: list[str | None] = [None] * len(prompts)
        # rows: (request, sample), grouped by the sampling settings a batch must share
        groups: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
        for i, (p, length) in enumerate(zip(params, lengths, strict=True)):
            if length >= self.context:
                errors[i] = (f"prompt of {length} tokens does not fit the model's context of "
                             f"{self.context} tokens")  # fmt: skip
                continue
            key = (p.temperature, p.top_p, p.max_new_tokens, p.stop)
            groups.setdefault(key, []).extend((i, j) for j in range(p.n))
        for rows in groups.values():
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start : start + self.batch_size]
                p = params[batch[0][0]]
                seeds = [params[i].seed for i, _ in batch]
                known = [s for s in seeds if s is not None]
                seed = (
                    derive_seed(*known, *(j for _, j in batch))
                    if len(known) == len(seeds)
                    else None
                )
                for (i, _), (text, count) in zip(
                    batch, self._generate([prompts[i] for i, _ in batch], p, seed), strict=True
                ):
                    texts[i].append(text)
                    generated[i] += count
        return [
            Completion(error=e, prompt_tokens=n)
            if e is not None
            else Completion(tuple(t), prompt_tokens=n, generated_tokens=g)
            for t, n, g, e in zip(texts, lengths, generated, errors, strict=True)
        ]

    def _generate(
        self, prompts: list[str], params: GenerationParams, seed: int | None
    ) -> list[tuple[str, int]]:
        import torch

        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        batch = batch.to(self.device)
        width = batch["input_ids"].shape[1]
        sampling: dict[str, Any] = {"do_sample": params.temperature > 0}
        if params.temperature > 0:
            sampling.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:  # greedy: no sampling knobs, or transformers warns that they are unused
            sampling.update(temperature=None, top_p=None, top_k=None)
        if params.stop:
            sampling.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        room = max(1, min(params.max_new_tokens, self.context - width))
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(
                **batch, max_new_tokens=room, pad_token_id=self.tokenizer.pad_token_id, **sampling
            )
        eos = self.tokenizer.eos_token_id
        results = []
        for row in out[:, width:].tolist():
            count = row.index(eos) + 1 if eos in row else len(row)
            text = self.tokenizer.decode(row[:count], skip_special_tokens=True)
            results.append((cut_at_stop(text, params.stop), count))
        return results
