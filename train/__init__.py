"""Training and evaluation command line for CoTT and its baselines."""
