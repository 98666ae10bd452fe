"""evaluation: metrics, change timing, backtest, comparison and their checks."""
