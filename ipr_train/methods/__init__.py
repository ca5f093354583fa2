"""Methods: one config class and a composition of the shared stages each, selected by the
``method:`` key of an ``ipr-train run`` config."""

from __future__ import annotations

from typing import Any


def method_of(raw: Any) -> tuple[type, Any]:
    """The config class and run function of a raw config's ``method`` (default ``ipr``)."""
    from ipr_train.config import ConfigError
    from ipr_train.methods.eto import ETOConfig, run_eto
    from ipr_train.methods.ipr import IPRConfig, run_ipr
    from ipr_train.methods.rft import RFTConfig, run_rft

    methods: dict[str, tuple[type, Any]] = {
        "ipr": (IPRConfig, run_ipr),
        "eto": (ETOConfig, run_eto),
        "rft": (RFTConfig, run_rft),
    }
    name = raw.get("method", "ipr") if isinstance(raw, dict) else "ipr"
    if name not in methods:
        raise ConfigError(f"method: unknown method {name!r}; known: {sorted(methods)}")
    return methods[name]
