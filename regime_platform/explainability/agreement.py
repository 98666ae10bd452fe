"""Where the explanation methods agree: each method's feature ranking, pairwise rank correlation, and the
features every method puts near the top (consensus) or that only some do (disputed)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from regime_platform.explainability.attributions import ALL_FEATURES


@dataclass
class Agreement:
    """Where the methods agree on the top features. ``ranks``: feature × (model/method) rank, 1 = most
    important; ``pairs``: per pair of rankings, Spearman correlation and top-k overlap; ``consensus``:
    features in the top k of more than half the rankings; ``disputed``: features some ranking puts first
    that at most half of them have in their top k."""

    ranks: pl.DataFrame
    pairs: pl.DataFrame
    consensus: list[str]
    disputed: list[str]
    top_k: int

    def to_markdown(self) -> str:
        columns = [c for c in self.ranks.columns if c != "feature"]
        lines = [
            f"**{len(columns)} rankings** (model · method), top {self.top_k} each.",
            "",
            f"- **Agree** (in the top {self.top_k} of more than half the rankings): "
            + (", ".join(f"`{f}`" for f in self.consensus) or "none"),
            "- **Disagree** (first for some ranking, in the top "
            f"{self.top_k} of at most half): " + (", ".join(f"`{f}`" for f in self.disputed) or "none"),
            "",
            "| ranking | top features |",
            "|---|---|",
        ]
        for c in columns:
            top = self.ranks.sort(c)["feature"].head(self.top_k).to_list()
            lines.append(f"| {c} | {', '.join(top)} |")
        if self.pairs.height:
            mean_rho = float(self.pairs["spearman"].mean())
            lines += ["", f"Mean Spearman rank correlation between rankings: {mean_rho:.2f} "
                      f"(1 = same order, 0 = unrelated)."]
        return "\n".join(lines)


def feature_rankings(rows: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Per ``model · method`` (over all windows, regime NULL), one score per feature: the value, summed
    over lags where the method resolves time. Methods that do not resolve features are left out."""
    usable = rows.filter(pl.col("regime").is_null() & (pl.col("feature") != ALL_FEATURES))
    scores = usable.group_by("model", "method", "feature").agg(pl.col("value").sum())
    out: dict[str, dict[str, float]] = {}
    for (model, method), group in scores.group_by("model", "method", maintain_order=True):
        out[f"{model} · {method}"] = dict(zip(group["feature"].to_list(), group["value"].to_list()))
    return dict(sorted(out.items()))


def method_agreement(rows: pl.DataFrame, top_k: int = 5) -> Agreement:
    """Compare every model · method feature ranking in ``rows`` (the feature_attributions columns)."""
    from scipy.stats import spearmanr

    rankings = feature_rankings(rows)
    if not rankings:
        raise ValueError("no feature attributions to compare: materialize sequence_attributions or "
                         "permutation_importance first.")
    features = sorted({f for scores in rankings.values() for f in scores})
    rank_columns: dict[str, np.ndarray] = {}
    for key, scores in rankings.items():
        values = np.array([scores.get(f, -np.inf) for f in features])
        order = np.argsort(-values, kind="stable")
        ranks = np.empty(len(features), dtype=np.int64)
        ranks[order] = np.arange(1, len(features) + 1)
        rank_columns[key] = ranks
    ranks = pl.DataFrame({"feature": features, **{k: v for k, v in rank_columns.items()}})
    keys = list(rank_columns)
    pairs = []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            rho = spearmanr(rank_columns[a], rank_columns[b]).statistic
            top_a = {f for f, r in zip(features, rank_columns[a]) if r <= top_k}
            top_b = {f for f, r in zip(features, rank_columns[b]) if r <= top_k}
            pairs.append({"a": a, "b": b, "spearman": float(rho), "top_k_overlap": len(top_a & top_b)})
    pairs_frame = pl.DataFrame(pairs, schema={"a": pl.String, "b": pl.String, "spearman": pl.Float64,
                                              "top_k_overlap": pl.Int64})
    in_top = {f: sum(int(rank_columns[k][i] <= top_k) for k in keys) for i, f in enumerate(features)}
    half = len(keys) / 2
    consensus = sorted((f for f, c in in_top.items() if c > half), key=lambda f: (-in_top[f], f))
    firsts = {f for k in keys for f, r in zip(features, rank_columns[k]) if r == 1}
    disputed = sorted(f for f in firsts if in_top[f] <= half)
    return Agreement(ranks, pairs_frame, consensus, disputed, top_k)
