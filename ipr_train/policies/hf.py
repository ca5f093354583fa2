"""Generation with transformers' ``generate`` (CPU or GPU), batched with left padding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ipr_train.policies.base import Conversation, GenerationParams, cut_at_stop


class HFPolicy:
    def __init__(self, model: Any, tokenizer: Any = None, device: str | None = None,
                 batch_size: int = 8, dtype: str | None = None):  # fmt: skip
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

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

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[str]:
        import torch

        if params.seed is not None:
            torch.manual_seed(params.seed)
        replies: list[str] = []
        for start in range(0, len(conversations), self.batch_size):
            chunk = conversations[start : start + self.batch_size]
            prompts = [
                self.tokenizer.apply_chat_template(
                    list(c), tokenize=False, add_generation_prompt=True
                )
                for c in chunk
            ]
            batch = self.tokenizer(
                prompts, return_tensors="pt", padding=True, add_special_tokens=False
            )
            batch = batch.to(self.device)
            sampling: dict[str, Any] = {"do_sample": params.temperature > 0}
            if params.temperature > 0:
                sampling.update(temperature=params.temperature, top_p=params.top_p)
            with torch.no_grad():
                out = self.model.generate(
                    **batch, max_new_tokens=params.max_new_tokens,
                    pad_token_id=self.tokenizer.pad_token_id, **sampling,
                )  # fmt: skip
            new = out[:, batch["input_ids"].shape[1] :]
            for row in new:
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                replies.append(cut_at_stop(text, params.stop))
        return replies
