"""Many environments stepped in parallel worker processes, branched from snapshots."""

from ipr_gym.pool.pool import EnvPool, SlotError

__all__ = ["EnvPool", "SlotError"]
