"""ingestion: market data in. `sources` (the bundled sample, the fallback chain, and every source re-exported from
its own module: `yfinance_source`, `stooq_source`, `csv_source`, sharing `source_base`) and `bars` (a source's
bars to market.ohlcv rows: chain-linked adjusted closes, vendor revisions, quality rules).
Import the module you need; the package itself exports nothing."""
