"""Methods: one config class and a composition of the shared stages each, selected by the
``method:`` key of an ``ipr-train run`` config."""

from __future__ import annotations

from typing import Any


def methods() -> dict[str, tuple[type, type]]:
    """Every method's config class and run class, by its ``method:`` name."""
    from ipr_train.methods.eto import ETOConfig, ETORun
    from ipr_train.methods.grpo import GiGPOConfig, GiGPORun, GRPOConfig, GRPORun
    from ipr_train.methods.ipr import IPRConfig, IPRRun
    from ipr_train.methods.ppo import PPOConfig, PPORun, StepPPOConfig, StepPPORun
    from ipr_train.methods.rft import RFTConfig, RFTRun
    from ipr_train.methods.sft_continued import SFTContinuedConfig, SFTContinuedRun
    from ipr_train.methods.stepagent import (
        StepAgentImplicitConfig,
        StepAgentImplicitRun,
        StepAgentInverseConfig,
        StepAgentInverseRun,
    )

    return {
        "ipr": (IPRConfig, IPRRun),
        "sft_continued": (SFTContinuedConfig, SFTContinuedRun),
        "rft": (RFTConfig, RFTRun),
        "eto": (ETOConfig, ETORun),
        "ppo": (PPOConfig, PPORun),
        "step_ppo": (StepPPOConfig, StepPPORun),
        "stepagent_implicit": (StepAgentImplicitConfig, StepAgentImplicitRun),
        "stepagent_inverse": (StepAgentInverseConfig, StepAgentInverseRun),
        "grpo": (GRPOConfig, GRPORun),
        "gigpo": (GiGPOConfig, GiGPORun),
    }


def method_of(raw: Any) -> tuple[Any, Any]:
    """The config class and run function of a raw config's ``method`` (default ``ipr``)."""
    from ipr_train.config import ConfigError

    known = methods()
    name = raw.get("method", "ipr") if isinstance(raw, dict) else "ipr"
    if name not in known:
        raise ConfigError(f"method: unknown method {name!r}; known: {sorted(known)}")
    config, run = known[name]
    return config, lambda cfg: run(cfg).run()
