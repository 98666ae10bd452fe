"""PNG helpers: the inline image stays under its size limit and decodes back to the same PNG."""
from __future__ import annotations

import base64

import numpy as np

from regime_platform import figures as plots


def test_inline_png_is_lowered_under_the_limit_and_round_trips_through_markdown():
    rng = np.random.default_rng(0)
    fig = plots.plt.figure(figsize=(14, 9))
    for _ in range(30):  # thirty jagged random walks compress badly: a heavy chart
        fig.gca().plot(np.cumsum(rng.normal(size=6000)), lw=0.6)
    full = plots.render(fig)
    small = plots.inline_png(fig, max_bytes=150_000)
    plots.close(fig)
    assert len(full) > 150_000 >= len(small) and small.startswith(b"\x89PNG")
    text = plots.markdown_image("noise", small)
    assert text.startswith("![noise](data:image/png;base64,")
    assert base64.b64decode(text.removeprefix("![noise](data:image/png;base64,").removesuffix(")")) == small


def test_model_comparison_draws_an_interval_that_excludes_its_point_estimate_from_end_to_end():
    """A percentile bootstrap interval on a short test span can lie wholly on one side of the point estimate
    (CI's QQQ run: max drawdown −0.10 with interval [−0.30, −0.12]); the figure draws the interval as it is."""
    import polars as pl

    from regime_platform.evaluation import figures as evaluation_figures

    table = pl.DataFrame({"name": ["random_forest", "buy_and_hold"], "macro_f1": [0.6, None],
                          "macro_f1_lo": [0.5, None], "macro_f1_hi": [0.7, None],
                          "balanced_accuracy": [0.6, None], "sharpe": [0.5, 0.4],
                          "max_drawdown": [-0.10, -0.2], "max_drawdown_lo": [-0.30, -0.35],
                          "max_drawdown_hi": [-0.12, -0.1]})
    fig = evaluation_figures.model_comparison(table, "QQQ")
    drawdown_axis = fig.axes[3]
    bars = [c for c in drawdown_axis.collections if c.get_segments()]
    spans = sorted((min(s[:, 0]), max(s[:, 0])) for c in bars for s in c.get_segments()
                   if np.ptp(s[:, 0]) > 0)
    plots.close(fig)
    assert np.allclose(spans, [(-0.35, -0.1), (-0.30, -0.12)])
