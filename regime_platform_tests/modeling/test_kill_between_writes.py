"""A model asset that dies between two of its writes (issue #29): what `no_leakage` and the readers see stays one run's.

A model asset stores its out-of-sample rows, the fold records `no_leakage` verifies them against, and its production
model. The records were a file, `folds_<targets_version>.json`, written before the rows were committed; the targets
version names the recipe, not the rows, so a new month's run kept the file's name and a death between the two left the
new month's records beside the previous month's rows. Now records and rows are one transaction (market.fold_records),
and the production model, saved after them by the IO manager, carries their walk-forward digest: a death before the
save is said by `no_leakage` in one sentence. Each death is planted in the real code path on a data dir through
2018-11-30 with December's sessions just added, as the kill test's increment; then the re-run completes.
"""
from __future__ import annotations

import json
import shutil

import dagster as dg
import pytest

from regime_platform import storage as wh
from regime_platform.defs.features.assets import features
from regime_platform.defs.ingestion.assets import ohlcv
from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.modeling.assets import model_assets, no_leakage_checks, walk_forward_targets
from regime_platform.modeling import production
from regime_platform.modeling.targets_version import scope_for
from regime_platform.storage import db, results
from regime_platform_tests.conftest import check_ticker, materialize_ticker, platform_resources

SETTINGS = dict(epochs=2, max_folds=1, inner_validation=False, settle_sessions=2)  # as test_kill_every_asset
HISTORY, INCREMENT = ("2012-01-03", "2018-11-30"), ("2018-12-03", "2018-12-31")
NAME, MODEL = "logistic_model", "logistic"
ASSET = next(a for a in model_assets if a.key.to_user_string() == NAME)
CHECK = next(c for c in no_leakage_checks if next(iter(c.check_keys)).asset_key == ASSET.key)


def prices(resources, window: tuple[str, str]) -> None:
    tags = {"dagster/asset_partition_range_start": window[0], "dagster/asset_partition_range_end": window[1]}
    assert dg.materialize([ohlcv, features], resources=resources, tags=tags).success


@pytest.fixture(scope="module")
def november(tmp_path_factory):
    """A data dir whose logistic model was materialized through November, then December's prices, labels and fold
    targets added: the state in which the model asset's next run (a new month, the same targets version) starts."""
    root = tmp_path_factory.mktemp("between_writes") / "base"
    root.mkdir()
    resources = platform_resources(root, **SETTINGS)
    prices(resources, HISTORY)
    assert materialize_ticker([regime_labels, walk_forward_targets, ASSET, CHECK], resources).success
    before = stored(resources, root)
    prices(resources, INCREMENT)
    assert materialize_ticker([regime_labels, walk_forward_targets], resources).success
    return root, before


@pytest.fixture
def data_dir(november, tmp_path):
    """A copy of the November data dir (each planted death starts from it), its resources and its stored state."""
    root, before = november
    copy = tmp_path / "data"
    shutil.copytree(root, copy)
    return platform_resources(copy, **SETTINGS), copy, before


def version(resources) -> str:
    return scope_for(resources["settings"].settings(), "SPY").targets_version


def stored(resources, root) -> dict:
    """The model's rows and fold records as `no_leakage` reads them (one connection), and its production model."""
    with resources["warehouse"].connect() as con:
        rows = wh.read_oos_predictions(con, "SPY", version(resources), MODEL)
        records = wh.read_fold_records(con, "SPY", version(resources), MODEL) \
            if wh.table_exists(con, "fold_records") else None
    saved = production.ProductionModel.load(root / "artifacts" / NAME / "SPY")
    return {"rows": rows, "records": records, "model_version": saved.model_version,
            "model_digest": saved.walk_forward_digest}


def one_run(state: dict) -> None:
    """The rows and the records are of one run: each record's test samples are exactly the fold's stored rows."""
    records = [json.loads(r) for r in state["records"]["record"]]
    counts = dict(state["rows"].group_by("fold").len().iter_rows())
    assert {r["fold"]: r["n_test"] for r in records} == counts
    assert state["records"]["walk_forward_digest"].n_unique() == 1


def check(resources) -> tuple[bool, str]:
    evaluation = check_ticker([ASSET], [CHECK], resources).get_asset_check_evaluations()[0]
    return evaluation.passed, evaluation.metadata["problems"].value


def rerun_completes(resources, root, before: dict) -> None:
    result = materialize_ticker([ASSET, CHECK], resources)
    evaluation = result.get_asset_check_evaluations()[0]
    assert result.success and evaluation.passed, evaluation.metadata["problems"].value
    after = stored(resources, root)
    one_run(after)
    assert after["rows"]["as_of"].max() > before["rows"]["as_of"].max()  # December's run
    assert after["model_digest"] == after["records"]["walk_forward_digest"][0]


def test_a_model_asset_that_dies_between_its_records_and_its_rows_leaves_the_previous_run_whole(data_dir, monkeypatch):
    """The death is planted as the rows are inserted, after the fold records: before, the new month's records file was
    already in place beside November's rows and model, and no_leakage verified that mix; now both are November's."""
    resources, root, before = data_dir
    honest = db.insert

    def dies_at_the_rows(con, table, frame):
        if table == "oos_predictions":
            raise RuntimeError("killed as the out-of-sample rows are written")
        honest(con, table, frame)

    monkeypatch.setattr(db, "insert", dies_at_the_rows)
    monkeypatch.setattr(results, "insert", dies_at_the_rows)
    assert not materialize_ticker([ASSET], resources, raise_on_error=False).success
    monkeypatch.undo()
    state = stored(resources, root)
    one_run(state)
    assert state["rows"].equals(before["rows"]) and state["records"].equals(before["records"])  # November's, whole
    assert state["model_version"] == before["model_version"]
    passed, problems = check(resources)
    assert passed, problems
    rerun_completes(resources, root, before)


def test_a_model_asset_that_dies_between_its_rows_and_its_model_is_refused_in_one_sentence(data_dir, monkeypatch):
    """The death is planted as the IO manager saves the production model, after the rows and records committed:
    before, no_leakage passed on December's rows and records beside November's model, which the ledger kept using;
    now the model's walk-forward digest is not the rows', and no_leakage says so and what to re-materialize."""
    resources, root, before = data_dir

    def dies_saving(self, directory, extra=None):
        raise RuntimeError("killed as the production model is saved")

    monkeypatch.setattr(production.ProductionModel, "save", dies_saving)
    assert not materialize_ticker([ASSET], resources, raise_on_error=False).success
    monkeypatch.undo()
    state = stored(resources, root)
    one_run(state)  # December's rows and records, together
    assert state["model_version"] == before["model_version"]  # November's model, whole
    passed, problems = check(resources)
    assert not passed
    lines = problems.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"- the production model in {root / 'artifacts' / NAME / 'SPY'} "
                                                   "was saved by another run than the stored rows and fold records of "
                                                   "logistic for SPY"), problems
    assert lines[0].endswith("the run that stored them stopped before saving its model; re-materialize "
                             "logistic_model for SPY"), problems
    rerun_completes(resources, root, before)


def test_fold_records_of_the_file_layout_are_refused_in_one_sentence_saying_what_to_re_materialize(data_dir):
    """A data dir from before market.fold_records: its rows, model and folds_<version>.json, no stored records."""
    resources, root, before = data_dir
    legacy = root / "artifacts" / NAME / "SPY" / f"folds_{version(resources)}.json"
    legacy.write_text(json.dumps({"folds": [json.loads(r) for r in before["records"]["record"]]}))
    with resources["warehouse"].connect() as con:
        con.execute("DELETE FROM market.fold_records")
    passed, problems = check(resources)
    assert not passed and problems == (
        f"- market.fold_records holds no fold records of logistic for SPY, targets {version(resources)}, and {legacy} "
        "was written before they moved into the warehouse (with the rows, in one transaction) and is no longer read: "
        "re-materialize logistic_model for SPY")
    rerun_completes(resources, root, before)
    assert not legacy.exists()  # the re-run removed the file nothing reads

