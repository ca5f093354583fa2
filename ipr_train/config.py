"""Typed configs of ``ipr-train``: one pydantic class per command, YAML keys one to one.

Numbers may be spelled any way YAML allows (``1e-3`` is a string to YAML and a float
here); a single path where a list is expected is a list of one; unknown keys, wrong types
and missing files are refused. ``load_config`` turns every problem into a ``ConfigError``
whose message has one line per problem, naming the key and what would be valid; the CLI
prints it and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

T = TypeVar("T", bound=BaseModel)


class ConfigError(ValueError):
    """A config that cannot run; the message names each bad key and the fix."""


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str | Path) else value


class SFTConfig(Config):
    """Supervised fine-tuning on trajectories (``ipr-train sft``); IPR's released settings
    are lr 2e-5, cosine, warmup 0.03, 3 epochs."""

    model: str = Field(description="HF model folder to start from")
    data: list[str] = Field(description="trajectory JSONL files or IPR/ETO FastChat JSON")
    output_dir: str
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(
        None, ge=1, description="optimizer steps, cycling the data; set: replaces epochs"
    )  # fmt: skip
    learning_rate: float = Field(2e-5, gt=0)
    batch_size: int = Field(1, ge=1, description="examples per device per micro-batch")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    max_length: int = Field(4096, ge=8, description="tokens kept per example (the rest cut)")
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup", "constant"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0, description="gradient clipping; null: off")
    save_steps: int = Field(0, ge=0, description="checkpoint every N optimizer steps; 0: never")
    log_steps: int = Field(1, ge=1)
    seed: int = 0
    lora: dict[str, Any] | None = None
    resume: bool = True
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    record_batches: bool = Field(False, description="log the example ids of every micro-batch")

    _paths = field_validator("data", mode="before")(_as_list)

    @field_validator("data")
    @classmethod
    def _files_exist(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one data file")
        missing = [p for p in value if not Path(p).is_file()]
        if missing:
            raise ValueError(f"no such file: {', '.join(missing)}")
        return value

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: str) -> str:
        if not (Path(value) / "config.json").is_file():
            raise ValueError(f"{value!r} is not a model folder (no config.json there)")
        return value


class EnvEval(Config):
    id: str
    split: str = "test"
    limit: int | None = Field(None, ge=1, description="first N tasks of the split")
    max_steps: int | None = Field(None, ge=1, description="step limit; default: IPR's per env")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="env constructor keywords")

    @field_validator("id")
    @classmethod
    def _registered(cls, value: str) -> str:
        import gymnasium as gym

        import ipr_gym  # noqa: F401 - registers the ids

        known = sorted(k for k in gym.registry if k.startswith("ipr/"))
        if value not in known:
            raise ValueError(f"unknown env id {value!r}; known: {known}")
        return value


class PolicyConfig(Config):
    model_config = ConfigDict(extra="allow")
    backend: Literal["hf", "vllm", "openai"] = "hf"
    model: str


class EvalConfig(Config):
    policy: PolicyConfig
    envs: list[EnvEval] = Field(min_length=1)
    output_dir: str
    workers: int = Field(0, ge=0, description="env worker processes; 0: in this process")
    slots: int = Field(8, ge=1, description="episodes played at once")
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=1)
    seed: int | None = 0
    data_dir: str | None = None


def _describe(error: dict[str, Any], where: str, cls: type[BaseModel]) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        known = sorted(_fields_at(cls, error["loc"][:-1]))
        return f"{where}: unknown key {key!r}; known keys here: {', '.join(known)}"
    if kind == "missing":
        return f"{where}: {key} is required"
    value = error.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    return f"{where}: {key}: {message.removeprefix('Value error, ')}{shown}"


def _fields_at(cls: type[BaseModel], loc: tuple[Any, ...]) -> set[str]:
    """The field names of the model at ``loc`` inside ``cls`` (list indices skipped)."""
    model: Any = cls
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        inner = getattr(annotation, "__args__", (annotation,))
        model = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return set()
    return set(model.model_fields)


def parse_config(raw: Any, cls: type[T], where: str = "config") -> T:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a config is a mapping of keys to values, got "
                          f"{type(raw).__name__}")  # fmt: skip
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(e, where, cls) for e in exc.errors()]  # type: ignore[arg-type]
        raise ConfigError("\n".join(lines)) from None


def load_config(path: str | Path, cls: type[T]) -> T:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML ({exc})") from None
    return parse_config(raw, cls, str(path))
