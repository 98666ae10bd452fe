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
