"""Policies: a batch of conversations in, ``n`` sampled replies per conversation out.

Backends: ``hf`` (transformers, CPU or GPU), ``vllm`` (vLLM's offline engine, optional
extra; in a child process of its own by default), ``openai`` (any OpenAI-compatible
server: vLLM serve, SGLang), ``scripted`` (a Python function, for tests and baselines).
``make_policy`` builds one from a config dict.
"""

from __future__ import annotations

from typing import Any

from ipr_train.policies.base import (
    Completion,
    GenerationParams,
    Policy,
    ScriptedPolicy,
    derive_seed,
)


def make_policy(config: dict[str, Any]) -> Policy:
    """The backend ``config`` names, with its options; ``process`` (default: true for vLLM,
    false otherwise) runs it in a child process of its own (``ipr_train.policies.process``)."""
    config = dict(config)
    backend = config.get("backend", "hf")
    if config.pop("process", backend == "vllm"):
        from ipr_train.policies.process import ProcessPolicy

        return ProcessPolicy(config)
    config.pop("backend", None)
    if backend == "hf":
        from ipr_train.policies.hf import HFPolicy

        return HFPolicy(**config)
    if backend == "vllm":
        from ipr_train.policies.vllm_engine import VLLMPolicy

        return VLLMPolicy(**config)
    if backend == "openai":
        from ipr_train.policies.openai_server import OpenAIPolicy

        return OpenAIPolicy(**config)
    raise ValueError(f"unknown policy backend {backend!r}; valid: hf, vllm, openai")


__all__ = [
    "Completion",
    "GenerationParams",
    "Policy",
    "ScriptedPolicy",
    "derive_seed",
    "make_policy",
]
