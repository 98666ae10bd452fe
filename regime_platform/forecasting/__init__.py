"""forecasting: the daily forecast ledger and its scoring (`ledger`) and the live record figure (`figures`). Import
the module you need; the package itself exports nothing."""
