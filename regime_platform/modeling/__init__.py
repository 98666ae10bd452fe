"""modeling: sequences, folds, each fold's targets, scaling, feature selection, the inner validation, the decision
rule, training, the walk-forward and the production fits, and the `no_leakage` verification. Import the module you
need; the package itself exports nothing (importing it does not import torch)."""
