"""regime_platform: forecast market regimes for SPY from daily prices, orchestrated by Dagster."""
