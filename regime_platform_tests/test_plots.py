"""PNG helpers: the inline image stays under its size limit and decodes back to the same PNG."""
from __future__ import annotations

import base64

import numpy as np

from regime_platform import plots


def test_inline_png_is_lowered_under_the_limit_and_round_trips_through_markdown():
    rng = np.random.default_rng(0)
    fig = plots.plt.figure(figsize=(12, 8))
    fig.gca().imshow(rng.random((400, 600)))  # noise compresses badly: a worst case for the size limit
    full = plots.render(fig)
    small = plots.inline_png(fig, max_bytes=150_000)
    plots.close(fig)
    assert len(full) > 150_000 >= len(small) and small.startswith(b"\x89PNG")
    text = plots.markdown_image("noise", small)
    assert text.startswith("![noise](data:image/png;base64,")
    assert base64.b64decode(text.removeprefix("![noise](data:image/png;base64,").removesuffix(")")) == small
