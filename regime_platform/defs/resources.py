"""Resources: the warehouse (DuckDB through dagster-duckdb) and the platform settings."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Optional

import dagster as dg
import duckdb
import polars as pl
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from regime_platform import warehouse
from regime_platform.settings import Settings
from regime_platform.sources import SourceChain, build_chain


class Warehouse(dg.ConfigurableResource):
    """market.* tables in one DuckDB file. Every write is one transaction; connections open late, close early.

    Every asset and check that uses it joins the `duckdb` pool (size 1): DuckDB lets only one process
    open the file read-write, and no other process can open it at all meanwhile.
    """

    duckdb: DuckDBResource

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.duckdb.database).parent.mkdir(parents=True, exist_ok=True)
        with self.duckdb.get_connection() as con:
            try:
                warehouse.ensure_schema(con)
                yield con
            finally:
                con.close()  # get_connection() does not close on an exception

    def read(self, sql: str, params: list | None = None) -> pl.DataFrame:
        with self.connect() as con:
            return warehouse.query(con, sql, params)

    def replace(self, table: str, frame: pl.DataFrame, where: str | None = None, params: list | None = None) -> int:
        with self.connect() as con:
            return warehouse.replace_rows(con, table, frame, where, params)


class RegimeSettings(dg.ConfigurableResource):
    """The platform's settings; defaults come from the REGIME_* environment variables (README: Settings)."""

    data_dir: str
    source: str = "auto"
    ticker: str = "SPY"
    horizon: int = 5
    window: int = 30
    labeler: str = "jump"
    label_lag: int = 0
    epochs: int = 30
    max_folds: Optional[int] = None
    stooq_api_key: Optional[str] = None
    ohlcv_csv: Optional[str] = None
    stooq_url: Optional[str] = None  # tests point this at a local server

    _chain: Optional[SourceChain] = PrivateAttr(default=None)

    @classmethod
    def from_env(cls) -> "RegimeSettings":
        s = Settings.from_env()
        return cls(data_dir=str(s.data_dir.resolve()), source=s.source, ticker=s.ticker, horizon=s.horizon,
                   window=s.window, labeler=s.labeler, label_lag=s.label_lag, epochs=s.epochs, max_folds=s.max_folds,
                   stooq_api_key=s.stooq_api_key,
                   ohlcv_csv=str(s.ohlcv_csv) if s.ohlcv_csv else None)

    def settings(self) -> Settings:
        from regime_platform.defs.partitions import REGIME_START

        s = Settings(data_dir=Path(self.data_dir), source=self.source, ticker=self.ticker, start=REGIME_START,
                     horizon=self.horizon, window=self.window, labeler=self.labeler, label_lag=self.label_lag,
                     epochs=self.epochs, max_folds=self.max_folds, stooq_api_key=self.stooq_api_key, ohlcv_csv=Path(self.ohlcv_csv) if self.ohlcv_csv else None)
        s.validate()
        return s

    def source_chain(self) -> SourceChain:
        return build_chain(self.source, stooq_api_key=self.stooq_api_key,
                           ohlcv_csv=Path(self.ohlcv_csv) if self.ohlcv_csv else None, stooq_url=self.stooq_url)


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Models (and later metrics and plots) as files under <data_dir>/artifacts/<asset>/.

    An output is any object with `save(directory) -> list[Path]` (each file written to a temporary name and
    renamed) and a classmethod `load(directory)`; which class to load is recorded in `artifact.json`
    and must live in regime_platform. Nothing is pickled: torch weights load with weights_only=True and
    scikit-learn models through skops with an explicit list of trusted types.
    """

    base_dir: str

    def directory(self, key: dg.AssetKey) -> Path:
        return Path(self.base_dir).joinpath(*key.path)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        from regime_platform.artifacts import write_json_atomic

        directory = self.directory(context.asset_key)
        files = obj.save(directory)
        cls = type(obj)
        write_json_atomic(directory / "artifact.json", {"class": f"{cls.__module__}:{cls.__qualname__}"})
        context.add_output_metadata({"artifact_dir": dg.MetadataValue.path(str(directory)),
                                     "files": len(files)})

    def load_input(self, context: dg.InputContext):
        import importlib

        from regime_platform.artifacts import read_json

        directory = self.directory(context.asset_key)
        module, _, qualname = read_json(directory / "artifact.json")["class"].partition(":")
        if not module.startswith("regime_platform."):
            raise ValueError(f"{directory / 'artifact.json'} names {module}, outside regime_platform; refusing to load it.")
        return getattr(importlib.import_module(module), qualname).load(directory)


def default_resources() -> dict:
    settings = RegimeSettings.from_env()
    database = str(Path(settings.data_dir) / "warehouse.duckdb")
    return {"warehouse": Warehouse(duckdb=DuckDBResource(database=database)), "settings": settings,
            "artifacts": ArtifactIOManager(base_dir=str(Path(settings.data_dir) / "artifacts"))}


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=default_resources())
