"""YAML configs of ``ipr-train sft`` and ``ipr-train eval``: plain dataclasses, unknown keys
refused with the list of known ones."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class SFTConfig:
    model: str
    data: list[str]
    output_dir: str
    epochs: float = 1.0
    learning_rate: float = 1e-5
    batch_size: int = 1
    grad_accum: int = 1
    max_length: int = 4096
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    save_steps: int = 0
    seed: int = 0
    lora: dict[str, Any] | None = None
    resume: bool = True
    mixed_precision: str = "no"


@dataclass
class EnvEval:
    id: str
    split: str = "test"
    limit: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalConfig:
    policy: dict[str, Any]
    envs: list[EnvEval]
    output_dir: str
    workers: int = 0
    slots: int = 8
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int | None = 0
    data_dir: str | None = None


def from_dict(cls: type[T], raw: dict[str, Any], where: str = "config") -> T:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    return cls(**raw)


def load_config(path: str | Path, cls: type[T]) -> T:
    import yaml

    raw = yaml.safe_load(Path(path).read_text())
    if cls is EvalConfig and isinstance(raw, dict):
        raw = dict(raw)
        raw["envs"] = [
            from_dict(EnvEval, e, f"{path}: envs[{i}]") for i, e in enumerate(raw.get("envs", []))
        ]
    try:
        return from_dict(cls, raw, str(path))
    except TypeError as exc:
        raise ValueError(f"{path}: {exc}") from None
