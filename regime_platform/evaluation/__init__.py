"""evaluation: metrics, change timing, the backtest, the comparison with baselines and rules, the headline horizon,
the independent audit and the evaluation figures. Import the module you need; the package exports nothing."""
