"""features: `compute` (the causal technical features and the model input sets) and `causality` (the
`features_causal` recompute from truncated prices). Import the module you need; the package exports nothing."""
