"""The settings of a method config's sections: generation (exploration, evaluation), the
Monte Carlo scorer's continuations, a training loop's knobs and DPO's."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ipr_train.config import Config
from ipr_train.policies import GenerationParams
from ipr_train.train import Schedule


class Generation(Config):
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=1)
    seed: int = 0

    def params(self, n: int = 1) -> GenerationParams:
        return GenerationParams(
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
            n=n,
        )


class MonteCarlo(Generation):
    """The scorer's continuations: IPR samples N = 5 at temperature 1 with the SFT model."""

    n: int = Field(5, ge=1)
    temperature: float = Field(1.0, ge=0)
    scorer: str | None = Field(None, description="model folder; null: the SFT model")


class TrainSettings(Config):
    """The training loop's knobs (``ipr_train.train.Schedule``) and the encoding's."""

    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(
        None, ge=1, description="optimizer steps, cycling the data; set: replaces epochs"
    )  # fmt: skip
    learning_rate: float = Field(2e-5, gt=0)
    batch_size: int = Field(1, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup", "constant"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    max_length: int = Field(4096, ge=8)
    seed: int = 0
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"

    def schedule(self) -> Schedule:
        known = set(Schedule.__dataclass_fields__)
        return Schedule(**{k: v for k, v in self.model_dump().items() if k in known})


class DPOSettings(TrainSettings):
    """IPR's released settings: lr 3e-6, 3 epochs, constant with warmup 0.1; beta in
    [0.1, 0.5]; the SFT term the summed log-likelihood of the chosen side, weight 1."""

    learning_rate: float = Field(3e-6, gt=0)
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup", "constant"] = (
        "constant_with_warmup"
    )
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    beta: float = Field(0.1, gt=0)
    outcome_weight: float = Field(1.0, ge=0, description="o-DPO (Eq. 7); 0: without it")
    step_weight: float = Field(1.0, ge=0, description="s-DPO (Eq. 8); 0: without it")
    sft_weight: float = Field(1.0, ge=0, description="SFT on chosen (Eq. 9); 0: without it")
    sft_reduction: Literal["sum", "mean"] = "sum"
    max_prompt_tokens: int = Field(2048, ge=1, description="prompt cut from the left")
