"""ingestion: market data in. `sources` (yfinance, Stooq, your CSV, the bundled sample, the fallback chain) and
`bars` (a source's bars to market.ohlcv rows: chain-linked adjusted closes, vendor revisions, quality rules).
Import the module you need; the package itself exports nothing."""
