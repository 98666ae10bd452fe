"""Resources: the warehouse (DuckDB through dagster-duckdb) and the platform settings."""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Iterator, Optional

import dagster as dg
import duckdb
import polars as pl
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from regime_platform import storage as warehouse
from regime_platform.defs.partitions import REGIME_START
from regime_platform.features.compute import model_feature_set
from regime_platform.ingestion.sources import SourceChain, build_chain
from regime_platform.settings import (
    TICKER_SYMBOL,
    Settings,
    SettingsError,
    check_ticker_partition,
    inside,
    parse_series,
    parse_tickers,
    setting_fields,
)
from regime_platform.storage.files import read_json
from regime_platform.storage.reports import Report


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
                for sentence in warehouse.upgrade_legacy_tables(con):  # once, on a warehouse made before the keys
                    dg.get_dagster_logger().warning(sentence)
                warehouse.ensure_schema(con)
                yield con
            finally:
                con.close()  # get_connection() does not close on an exception

    def read(self, sql: str, params: list | None = None) -> pl.DataFrame:
        with self.connect() as con:
            return warehouse.query(con, sql, params)


class _SettingsResource(dg.ConfigurableResource):
    """The platform's settings as a Dagster resource; its fields are generated from `Settings` (see below)."""

    stooq_url: Optional[str] = None  # not a user setting: tests point the Stooq source at a local server
    # not a user setting: REGIME_DATA_DIR when the definitions loaded, where the warehouse and the artifact IO manager
    # were opened (default_resources); a run config data_dir elsewhere would split one run's files across two places
    definitions_data_dir: Optional[str] = None

    _chain: Optional[SourceChain] = PrivateAttr(default=None)

    @classmethod
    def from_env(cls) -> "RegimeSettings":
        s = Settings.from_env()
        values = {f.name: _to_config(getattr(s, f.name)) for f in _run_config_fields()}
        # a secret (an API key, a webhook URL that may carry a token) goes in as dg.EnvVar: resolved at launch or tick
        # time and never displayed in the UI's resource config (DESIGN §6)
        secrets = {f.name: dg.EnvVar(f.metadata["env"]) for f in _run_config_fields()
                   if f.metadata["secret"] and getattr(s, f.name) is not None}
        data_dir = str(s.data_dir.resolve())
        bound = values | secrets | {"data_dir": data_dir, "definitions_data_dir": data_dir}
        # Run config of a resource replaces every value bound here (Dagster 1.13: a field it leaves out takes the class
        # default, not this value), so a launchpad `{horizon: 21}` sent REGIME_DATA_DIR back to ./data, the source to
        # auto and the key to none. The instance's class carries the environment as its defaults instead.
        loaded = type(cls.__name__, (cls,), {"__module__": cls.__module__, "__doc__": cls.__doc__, **bound,
                                             "__annotations__": {n: cls.model_fields[n].annotation for n in bound}})
        return loaded(**bound)

    def settings(self) -> Settings:
        if self.definitions_data_dir and Path(self.data_dir).resolve() != Path(self.definitions_data_dir):
            raise SettingsError(f"resources.settings.config.data_dir={self.data_dir} is not REGIME_DATA_DIR="
                                f"{self.definitions_data_dir}, where the definitions opened the warehouse and the "
                                f"artifacts: set REGIME_DATA_DIR={self.data_dir} and reload the definitions instead.")
        values = {f.name: getattr(self, f.name) for f in _run_config_fields()}
        for name in ("data_dir", "ohlcv_csv"):
            values[name] = Path(values[name]) if values[name] else None
        values["tickers"] = _tickers(values["tickers"])
        series = values["macro_series"]
        values["macro_series"] = parse_series(series if isinstance(series, str) else ",".join(series),
                                              "resources.settings.config.macro_series")
        s = Settings(start=REGIME_START, **values)
        s.validate()
        model_feature_set(s.features)  # REGIME_FEATURES names real, scale-free columns (SettingsError otherwise)
        return s

    def source_chain(self) -> SourceChain:
        s = self.settings()
        return build_chain(s.source, stooq_api_key=s.stooq_api_key, ohlcv_csv=s.ohlcv_csv, stooq_url=self.stooq_url)


def _run_config_fields() -> list[dataclasses.Field]:
    return [f for f in setting_fields() if not f.metadata["load_time_only"]]


def _to_config(value):
    if isinstance(value, tuple):
        return list(value)
    return str(value) if isinstance(value, Path) else value


def _tickers(configured) -> tuple[str, ...]:
    """Run config gives a list (or one comma string): the same parsing and checks as REGIME_TICKERS."""
    raw = configured if isinstance(configured, str) else ",".join(configured)
    return parse_tickers(raw, "resources.settings.config.tickers")


_CONFIG_TYPES = {"tuple[str, ...]": list[str], "Path": str, "Path | None": Optional[str], "str": str, "str | None": Optional[str], "int": int,
                 "int | None": Optional[int], "bool": bool}

# One declaration: every field of `Settings` but REGIME_START (which fixes the partitions at load time) becomes a
# field of this resource, with the same name and default, so each setting is also Dagster run config.
RegimeSettings = type("RegimeSettings", (_SettingsResource,), {
    "__module__": __name__,
    "__doc__": "The platform's settings (README: Settings): each REGIME_* variable's default, overridable as run "
               "config under resources.settings.config. Generated from regime_platform.settings.Settings.",
    "__annotations__": {f.name: _CONFIG_TYPES[str(f.type)] for f in _run_config_fields()},
    **{f.name: _to_config(f.default) for f in _run_config_fields()},
})


class ArtifactIOManager(dg.ConfigurableIOManager):
    """Models, metrics and plots as files under <data_dir>/artifacts/<asset>/<ticker>/ (a per-ticker asset's
    partition is its ticker; an unpartitioned asset's files sit in <asset>/).

    An output is any object with `save(directory, extra=None) -> list[Path]` (a model's or a report's files, and the
    `extra` JSON documents, written as one generation, made current by one atomic rename: storage.publish_generation)
    and a classmethod `load(directory)` (a report's also takes the asset its refusal names); which class to load is
    recorded in `artifact.json`, one of those extra documents, so a kill never leaves a current generation without it
    (a directory saved before keeps its marker beside the generations), and must live in regime_platform. Nothing
    is pickled: torch weights load with weights_only=True and
    scikit-learn models through skops with an explicit list of trusted types. An input spanning several ticker
    partitions (the daily ledger reads every ticker's models) loads as {ticker: object} for each stored one.
    """

    base_dir: str

    def directory(self, key: dg.AssetKey, partition: str | None = None) -> Path:
        """<base_dir>/<asset>/<ticker>/; a partition key that is not a ticker symbol is refused (SettingsError)."""
        parts = (*key.path, check_ticker_partition(partition)) if partition else key.path
        return inside(Path(self.base_dir), *parts)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        directory = self.directory(context.asset_key, context.asset_partition_key if context.has_asset_partitions
                                   else None)
        cls = type(obj)
        files = obj.save(directory, extra={MARKER: {"class": f"{cls.__module__}:{cls.__qualname__}"}})
        context.add_output_metadata({"artifact_dir": dg.MetadataValue.path(str(directory)),
                                     "files": len(files)})

    def load_input(self, context: dg.InputContext):
        key = context.asset_key
        if not context.has_asset_partitions:
            return self._load(self.directory(key), key.to_user_string())
        keys = context.asset_partition_keys
        if context.has_partition_key and list(keys) == [context.partition_key]:  # the same ticker downstream
            return self._load(self.directory(key, keys[0]), f"{key.to_user_string()} for {keys[0]}")
        return {k: self._load(self.directory(key, k), f"{key.to_user_string()} for {k}")
                for k in keys  # a stray key has no files, nor has a ticker whose first save did not finish
                if TICKER_SYMBOL.fullmatch(k) and marker(self.directory(key, k)) is not None}

    @staticmethod
    def _load(directory: Path, asset: str | None = None):
        """The object saved in ``directory``; ``asset`` ("backtest for SPY") is what a report's refusal of a changed
        file says to re-materialize, and what a directory without a saved artifact says to materialize."""
        import importlib

        path = marker(directory)
        if path is None:
            raise FileNotFoundError(f"{directory} holds no saved artifact (no {MARKER} in its current generation: "
                                    f"its first save did not finish, or it was never materialized); materialize "
                                    f"{asset or 'the asset that writes it'}.")
        module, _, qualname = read_json(path)["class"].partition(":")
        if not module.startswith("regime_platform."):
            raise ValueError(f"{path} names {module}, outside regime_platform; refusing to load it.")
        cls = getattr(importlib.import_module(module), qualname)
        if asset and isinstance(cls, type) and issubclass(cls, Report):
            return cls.load(directory, asset=asset)
        return cls.load(directory)


MARKER = "artifact.json"  # {"class": "module:qualname"}: which class loads a saved artifact


def marker(directory: Path) -> Path | None:
    """The marker of what ``directory`` holds: its current generation's, else (saved before the marker moved into the
    generation) the one beside the generations; None when there is neither."""
    for path in (warehouse.current_generation(directory) / MARKER, directory / MARKER):
        if path.exists():
            return path
    return None


def artifact_directory(settings: RegimeSettings, asset_name: str, ticker: str | None = None) -> Path:
    """Where the artifact IO manager keeps ``asset_name``'s files (of ``ticker``'s partition): what metadata points to."""
    return settings.settings().artifact_dir(asset_name, ticker)


def default_resources() -> dict:
    settings = RegimeSettings.from_env()
    database = str(Path(settings.data_dir) / "warehouse.duckdb")
    return {"warehouse": Warehouse(duckdb=DuckDBResource(database=database)), "settings": settings,
            "artifacts": ArtifactIOManager(base_dir=str(Path(settings.data_dir) / "artifacts"))}


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=default_resources())
