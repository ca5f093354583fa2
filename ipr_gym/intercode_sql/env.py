"""ipr/InterCodeSQL-v0: registered now so the id is stable; the engine lands with issue #4."""

from __future__ import annotations

from typing import Any

from ipr_gym.core import TextEnv


class InterCodeSQLEnv(TextEnv):
    def __init__(self, **kwargs: Any):
        raise NotImplementedError(
            "ipr/InterCodeSQL-v0 is registered but its engine has not landed yet (issue #4)"
        )
