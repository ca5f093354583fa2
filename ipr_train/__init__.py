"""ipr_train: IPR and its relatives (SFT, ETO, RFT, StepAgent) on ipr_gym environments."""

__version__ = "0.1.0"
