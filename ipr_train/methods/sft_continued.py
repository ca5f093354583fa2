"""The "SFT continued" control: per iteration the agent is fine-tuned further on the expert
demonstrations alone, with the training settings (``sft``: the optimizer-step budget, the
learning rate and its schedule) the other methods get per iteration, then evaluated. It
explores nothing and learns from nothing the methods add, so a method's gain over this row
is the method's, not the extra training's.

The stages are the shared ones (``ipr_train.methods.base``): SFT and evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ipr_train.methods.base import MethodConfig, MethodRun


class SFTContinuedConfig(MethodConfig):
    """``sft`` holds the continued training's settings (the same as the first SFT's when
    ``sft_model`` is null and the SFT runs here)."""

    method: Literal["sft_continued"] = "sft_continued"
    sft_model: str | None = Field(
        None, description="the first agent, already fine-tuned on the experts; null: SFT here"
    )

    @model_validator(mode="after")
    def _trains(self) -> SFTContinuedConfig:
        if self.sft is None:
            raise ValueError("sft: the control trains every iteration with these settings")
        return self


class SFTContinuedRun(MethodRun):
    NAME = "SFT continued"
    cfg: SFTContinuedConfig

    def initial_model(self) -> str:
        return self.cfg.sft_model or super().initial_model()

    def iteration(self, k: int, agent: str) -> str:
        run, it = self.run_dir, f"iter_{k}"
        run.stage(f"{it}/train", lambda f: self.continue_stage(f, agent))
        return self.evaluate_iteration(k, str(run.path(f"{it}/train") / "final"))

    def continue_stage(self, folder: Path, agent: str) -> dict[str, Any]:
        stats = self.sft_stage(folder, model=agent)
        return stats | {"signal": len(self.experts), "signal_unit": "demonstrations"}
