"""Generation with transformers' ``generate`` (CPU or GPU), batched with left padding.

Sampling matches vLLM's defaults: no top-k (transformers would otherwise apply its implicit
``top_k=50``), ``top_p`` as given. Stop strings end generation as they are produced. Each
of a request's ``n`` samples is its own row; a batch of rows is seeded from the seeds of its
rows, so a rerun with the same seeds and batch composition gives the same samples, and the
rows of one batch (the ``n`` samples of a request among them) differ. A prompt longer than
the model's context is answered with an error, as vLLM does. Prompts read only the tokens
past what an earlier turn or sample already read (``prefix_cache``; ``prefix_cache_mb``
0 turns it off).
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
from ipr_train.policies.prefix_cache import PrefixCache, supported


class HFPolicy(Policy):
    def __init__(self, model: Any, tokenizer: Any = None, device: str | None = None,
                 batch_size: int = 8, dtype: str | None = None,
                 prefix_cache_mb: int = 1024):  # fmt: skip
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
        self.cache = (PrefixCache(self.model, prefix_cache_mb << 20)
                      if prefix_cache_mb and supported(self.model) else None)  # fmt: skip

    def complete(
        self, conversations: Sequence[Conversation], params: Sequence[GenerationParams]
    ) -> list[Completion]:
        prompts = [text_ids(self.tokenizer, chat_prompt(self.tokenizer, c)) for c in conversations]
        lengths = [len(p) for p in prompts]
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
        self, prompts: list[list[int]], params: GenerationParams, seed: int | None
    ) -> list[tuple[str, int]]:
        import torch

        width = max(map(len, prompts))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                            device=self.device)  # fmt: skip
        sampling: dict[str, Any] = {"do_sample": params.temperature > 0}
        if params.temperature > 0:
            sampling.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:  # greedy: no sampling knobs, or transformers warns that they are unused
            sampling.update(temperature=None, top_p=None, top_k=None)
        if params.stop:
            sampling.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        room = max(1, min(params.max_new_tokens, self.context - width))
        cache = self._read(prompts, width, room)
        if cache is not None:
            sampling["cache"] = cache
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=room, pad_token_id=pad,
                **sampling,
            )  # fmt: skip
        eos = self.tokenizer.eos_token_id
        fed = cache.get_seq_length() - width if cache is not None else 0  # generated, read
        results = []
        for i, (prompt, row) in enumerate(zip(prompts, out[:, width:].tolist(), strict=True)):
            count = row.index(eos) + 1 if eos in row else len(row)
            text = self.tokenizer.decode(row[:count], skip_special_tokens=True)
            results.append((cut_at_stop(text, params.stop), count))
            if cache is not None:
                assert self.cache is not None  # a batch cache comes from it
                self.cache.keep(prompt + row[: min(count, fed)], cache, i, width - len(prompt))
        return results

    def _read(self, prompts: list[list[int]], width: int, room: int) -> Any:
        """The batch's prompts but their last tokens, read through the prefix cache (each
        distinct prompt once) into one left-padded cache; None without a prefix cache (off,
        or a model with sliding-window or recurrent layers)."""
        if self.cache is None or min(map(len, prompts)) < 2:
            return None
        read: dict[tuple[int, ...], Any] = {}
        for p in prompts:
            if tuple(p) not in read:
                read[tuple(p)] = self.cache.read(p)
        return self.cache.assemble([read[tuple(p)] for p in prompts], width - 1, room + 1)
