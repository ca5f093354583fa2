"""ipr_train: SFT, IPR and its relatives on ipr_gym environments.

Importing it pins the numeric kernels (``ipr_train.determinism``) before torch computes, so
the same config and seed give the same numbers on every machine of a kind.
"""

from ipr_train.determinism import pin_numerics

pin_numerics()

__version__ = "0.1.0"
