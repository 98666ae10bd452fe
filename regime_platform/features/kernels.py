"""Per-ticker recursive averages and short windows as compiled passes over contiguous numpy slices.

polars evaluates a recursive average per ticker as a window expression (`.over("ticker")`), which costs several times
what the recursion itself does; here the rows are sorted by (ticker, date) once, `starts` holds the offset of each
ticker's first row (and the row count last), and each ticker's slice is one C pass of ``scipy.signal.lfilter`` whose
initial state carries the seed (neighbouring tickers of equal length as one 2-D call, row by row: the same arithmetic).
lfilter computes alpha × x + (1 − alpha) × previous where TA-Lib and polars compute previous + alpha × (x − previous):
the same average, rounded differently (a few ulps of the price level; MACD against TA-Lib 1e-12 of max(1, |MACD|)
instead of 6e-14). The results are polars' own, missing values included: an input is a float array with
a validity mask (False = NULL; None: no NULL); a NULL is a gap (skipped, while the weights keep decaying, as polars'
``ewm_mean(ignore_nulls=False)`` does) and a NaN poisons every later value (polars' arithmetic); an output is NULL where
its mask is False. Pure numpy/scipy: no polars, no Dagster.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

_EPS = np.finfo(np.float64).eps


def ticker_starts(run_lengths: np.ndarray) -> np.ndarray:
    """Offsets of each ticker's first row and, last, the number of rows: [0, n0, n0 + n1, …]."""
    return np.concatenate([[0], np.cumsum(run_lengths, dtype=np.int64)])


def rows_within(starts: np.ndarray) -> np.ndarray:
    """Each row's index within its ticker (0 at each ticker's first session)."""
    lengths = np.diff(starts)
    return (np.arange(starts[-1], dtype=np.int64) - np.repeat(starts[:-1], lengths)).astype(np.int32)


def from_row(starts: np.ndarray, k: int, size: int) -> np.ndarray:
    """True from each ticker's row k on (the rows where a window of k + 1 sessions fits)."""
    ok = np.ones(size, dtype=bool)
    for a, b in zip(starts[:-1].tolist(), starts[1:].tolist()):
        ok[a:min(a + k, b)] = False
    return ok


def _decay(x: np.ndarray, keep: float, gain: float, before: float) -> np.ndarray:
    """y[i] = keep × y[i-1] + gain × x[i], with y[-1] = before: one compiled pass."""
    return lfilter([gain], [1.0, -keep], x, zi=[keep * before])[0]


def _blocks(begin: np.ndarray, end: np.ndarray, fast: np.ndarray, offset: np.ndarray | int) -> list[np.ndarray]:
    """The tickers on the fast path (no gap) grouped into runs that lie next to each other with the same length and the
    same first row to filter (`offset` into the ticker): each run is one (tickers × sessions) block, one lfilter call
    filtering row by row, the same arithmetic as one call per ticker."""
    idx = np.flatnonzero(fast)
    if not idx.size:
        return []
    length, offset = end[idx] - begin[idx], np.broadcast_to(offset, fast.shape)[idx]
    cut = (np.diff(idx) != 1) | (np.diff(length) != 0) | (np.diff(offset) != 0) | (begin[idx[1:]] != end[idx[:-1]])
    return np.split(idx, np.flatnonzero(cut) + 1)


def _block(values: np.ndarray, begin: np.ndarray, end: np.ndarray, run: np.ndarray) -> np.ndarray:
    """The rows of the tickers in `run` as a (tickers × sessions) view."""
    return values[begin[run[0]]:end[run[-1]]].reshape(run.size, -1)


def _seeds(x: np.ndarray, valid: np.ndarray | None, starts: np.ndarray, seed_index: int,
           seed_period: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per ticker long enough: the row of its seed, the seed (mean of the `seed_period` values ending there), whether
    all of those are valid, and the ticker's end."""
    at, end = starts[:-1] + seed_index, starts[1:]
    long = at < end
    at, end = at[long], end[long]
    window = at[:, None] - np.arange(seed_period - 1, -1, -1)
    usable = np.ones(at.size, dtype=bool) if valid is None else valid[window].all(axis=1)
    return at, end, np.sum(x[window], axis=1) / seed_period, usable


def seeded_ema(x: np.ndarray, valid: np.ndarray | None, starts: np.ndarray, alpha: float, seed_index: int,
               seed_period: int) -> tuple[np.ndarray, np.ndarray]:
    """TA-Lib's EMA per ticker: NULL before row `seed_index`, there the mean of the `seed_period` values ending at it
    (NULL if one of them is), then value[t] = value[t-1] + alpha × (x[t] − value[t-1]).

    Equal to polars' ``ewm_mean(alpha, adjust=False, ignore_nulls=False)`` over that seeded series: after k NULLs the
    next value is ((1-alpha)^(k+1) × value + alpha × x) / ((1-alpha)^(k+1) + alpha); with a NULL seed the first valid
    value after it starts the average."""
    out, ok = np.empty(x.shape), np.zeros(x.shape, dtype=bool)
    keep = 1.0 - alpha
    at, end, seed, seed_ok = _seeds(x, valid, starts, seed_index, seed_period)
    gaps = np.flatnonzero(~valid) if valid is not None else np.zeros(0, dtype=np.int64)
    first_gap, last_gap = np.searchsorted(gaps, at + 1), np.searchsorted(gaps, end)
    fast = seed_ok & (first_gap == last_gap)  # the usual case: a valid seed and no gap after it
    begin = at - seed_index
    for a, b in zip(starts[:-1].tolist(), starts[1:].tolist()):
        out[a:min(a + seed_index, b)] = np.nan
    for a, b in zip(at[~fast].tolist(), end[~fast].tolist()):
        out[a:b] = np.nan
    for run in _blocks(begin, end, fast, seed_index):
        rows, done = _block(out, begin, end, run), _block(ok, begin, end, run)
        rows[:, seed_index] = seed[run]
        rows[:, seed_index + 1:] = lfilter([alpha], [1.0, -keep], _block(x, begin, end, run)[:, seed_index + 1:],
                                           axis=1, zi=keep * seed[run, None])[0]
        done[:, seed_index:] = True
    for a, b, level, usable, g0, g1 in zip(at[~fast].tolist(), end[~fast].tolist(), seed[~fast].tolist(),
                                           seed_ok[~fast].tolist(), first_gap[~fast].tolist(),
                                           last_gap[~fast].tolist()):
        if usable:
            out[a], ok[a] = level, True
        else:
            level = None
        lo, since = a + 1, 0  # since: NULLs since the last valid value
        for stop in [*gaps[g0:g1].tolist(), b]:
            if stop > lo:
                first = lo
                if level is None:
                    out[first] = level = x[first]
                    first += 1
                elif since:
                    w = keep ** (since + 1)
                    out[first] = level = (w * level + alpha * x[first]) / (w + alpha)
                    first += 1
                out[first:stop] = _decay(x[first:stop], keep, alpha, level)
                ok[lo:stop] = True
                level, since = out[stop - 1], 0
            since += 1
            lo = stop + 1
    return out, ok


def ema_difference(x: np.ndarray, valid: np.ndarray | None, starts: np.ndarray, fast: int, slow: int,
                   seed_index: int) -> tuple[np.ndarray, np.ndarray]:
    """TA-Lib's EMA(fast) − EMA(slow) (both α = 2 / (n + 1), both seeded at `seed_index`, each from its own n values),
    what :func:`seeded_ema` gives for each and subtracts.

    Where no value is missing it is one second-order pass over the price changes, (α_f − α_s) / ((1 − q_f z⁻¹)(1 − q_s
    z⁻¹)) with q = 1 − α, started from the two seeds: half the work of two averages, and, its state being of the size
    of the difference rather than of the price, closer to exact (9e-13 against 4e-12 from an 80-bit reference on a
    5,000-session walk near 5,000 points; TA-Lib's own 2e-12). A ticker with a gap takes the two averages."""
    a_f, a_s = 2.0 / (fast + 1), 2.0 / (slow + 1)
    q_f, q_s = 1.0 - a_f, 1.0 - a_s
    out, ok = np.empty(x.shape), np.zeros(x.shape, dtype=bool)
    at, end, seed_f, ok_f = _seeds(x, valid, starts, seed_index, fast)
    _, _, seed_s, ok_s = _seeds(x, valid, starts, seed_index, slow)
    gaps = np.flatnonzero(~valid) if valid is not None else np.zeros(0, dtype=np.int64)
    fast_path = ok_f & ok_s & (np.searchsorted(gaps, at + 1) == np.searchsorted(gaps, end))  # no gap after the seed
    begin = at - seed_index
    for a, b in zip(starts[:-1].tolist(), starts[1:].tolist()):
        out[a:min(a + seed_index, b)] = np.nan
    for run in _blocks(begin, end, fast_path, seed_index):
        rows, done, prices = _block(out, begin, end, run), _block(ok, begin, end, run), _block(x, begin, end, run)
        f, s = seed_f[run, None], seed_s[run, None]
        rows[:, seed_index:seed_index + 1] = f - s
        state = np.hstack([(a_f - a_s) * prices[:, seed_index:seed_index + 1] + q_f * f - q_s * s, -q_f * q_s * (f - s)])
        rows[:, seed_index + 1:] = lfilter([a_f - a_s], [1.0, -(q_f + q_s), q_f * q_s],
                                           np.diff(prices[:, seed_index:], axis=1), axis=1, zi=state)[0]
        done[:, seed_index:] = True
    for i in np.flatnonzero(~fast_path).tolist():
        a, b = int(begin[i]), int(end[i])
        part = slice(a, b)
        bounds, sub = np.array([0, b - a]), None if valid is None else valid[part]
        ema_f, f_ok = seeded_ema(x[part], sub, bounds, a_f, seed_index, fast)
        ema_s, s_ok = seeded_ema(x[part], sub, bounds, a_s, seed_index, slow)
        out[part], ok[part] = ema_f - ema_s, f_ok & s_ok
    return out, ok


def ew_mean(x: np.ndarray, valid: np.ndarray | None, starts: np.ndarray, alpha: float,
            min_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """polars' ``ewm_mean(alpha, adjust=True, min_samples, ignore_nulls=False)`` per ticker (pandas' ``ewm().mean()``
    weights): Σ (1-alpha)^(t-i) x[i] / Σ (1-alpha)^(t-i) over the valid i ≤ t, NULL where x[t] is NULL or fewer than
    `min_samples` valid values exist. Numerator and denominator are each one linear pass."""
    out, ok = np.full(x.shape, np.nan), np.zeros(x.shape, dtype=bool)
    keep, begin, end = 1.0 - alpha, starts[:-1], starts[1:]
    if valid is None:
        valid = np.ones(x.size, dtype=bool)
    gaps = np.flatnonzero(~valid)
    count, enough = end - begin - (np.searchsorted(gaps, end) - np.searchsorted(gaps, begin)), max(min_samples, 1)
    first = begin.copy()  # each ticker's first valid row
    for i in np.flatnonzero(~valid[begin] & (count > 0)).tolist():
        first[i] += int(valid[begin[i]:end[i]].argmax())
    fast = (count >= enough) & (count == end - first)  # no gap after the first valid value
    if fast.any():  # Σ of the weights when no value is missing: the same for every ticker
        weights = _decay(np.ones(int((end - first)[fast].max())), keep, 1.0, 0.0)
    for run in _blocks(begin, end, fast, first - begin):
        skip = int(first[run[0]] - begin[run[0]])
        rows = _block(out, begin, end, run)[:, skip:]
        num = lfilter([1.0], [1.0, -keep], _block(x, begin, end, run)[:, skip:], axis=1, zi=np.zeros((run.size, 1)))
        np.divide(num[0], weights[:rows.shape[1]], out=rows)
        rows[:, :enough - 1] = np.nan
        _block(ok, begin, end, run)[:, skip + enough - 1:] = True
    for a, b, f in zip(begin[~fast & (count >= enough)].tolist(), end[~fast & (count >= enough)].tolist(),
                       first[~fast & (count >= enough)].tolist()):
        num = _decay(np.where(valid[f:b], x[f:b], 0.0), keep, 1.0, 0.0)
        np.divide(num, _decay(valid[f:b].astype(np.float64), keep, 1.0, 0.0), out=out[f:b])
        ok[a:b] = valid[a:b] & (np.cumsum(valid[a:b]) >= min_samples)
        out[a:b][~ok[a:b]] = np.nan
    return out, ok


def _shifted_sum(values: np.ndarray, lo: int, hi: int, lags: range, out: np.ndarray) -> np.ndarray:
    """out[i] = Σ over lags of values[lo + i − lag] for lo ≤ lo + i < hi, summed in the order of `lags`."""
    first, *rest = lags
    np.copyto(out, values[lo - first:hi - first])
    for lag in rest:
        np.add(out, values[lo - lag:hi - lag], out=out)
    return out


def window_mean_std(x: np.ndarray, n: int, ddof: int = 1, std: bool = True,
                    chunk: int = 1 << 15) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean and std (None when `std` is False) of the n values ending at each row (rows < n-1: NaN), each a function of
    its window's values alone: computed over all tickers at once it equals a per-ticker computation wherever the window
    lies inside one ticker (the caller masks the first n-1 rows of each). NaN in a window gives NaN; a flat window's
    std is exactly 0, as polars' is.

    The window is split into n / b consecutive blocks of b values (b the divisor of n nearest √n), and the sum of squared
    deviations combines the blocks' own (two-pass, from their means) with b × (block mean − window mean)² (Chan et
    al.'s pairwise update): as stable as a two-pass over the window, in about half the passes."""
    b = min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: abs(d - n ** 0.5))
    size, blocks = x.size, range(0, n, b)
    mean, sd = np.empty(size), np.empty(size) if std else None
    mean[:n - 1] = np.nan
    if std:
        sd[:n - 1] = np.nan
    buffers = [np.empty(chunk + n) for _ in range(4)] + [np.empty(chunk) for _ in range(3)]
    for c0 in range(n - 1, size, chunk):
        c1 = min(size, c0 + chunk)
        lo = c0 - (n - b)  # blocks ending at rows lo … c1-1 make up the windows ending at c0 … c1-1
        total, block_mean, block_sq, dev = (a[:c1 - lo] for a in buffers[:4])
        s, between, d = (a[:c1 - c0] for a in buffers[4:])
        _shifted_sum(x, lo, c1, range(b), total)
        m = mean[c0:c1]
        np.divide(_shifted_sum(total, c0 - lo, c1 - lo, blocks, d), n, out=m)
        if not std:
            continue
        np.divide(total, b, out=block_mean)
        block_sq.fill(0.0)
        for k in range(b):
            np.subtract(x[lo - k:c1 - k], block_mean, out=dev)
            np.multiply(dev, dev, out=dev)
            np.add(block_sq, dev, out=block_sq)
        _shifted_sum(block_sq, c0 - lo, c1 - lo, blocks, s)
        between.fill(0.0)
        for j in blocks:
            np.subtract(block_mean[c0 - lo - j:c1 - lo - j], m, out=d)
            np.multiply(d, d, out=d)
            np.add(between, d, out=between)
        np.multiply(between, b, out=between)
        np.add(s, between, out=s)
        # A flat window's mean can miss its value by rounding, leaving a sum of squares of ~(n eps |m|)^2: those
        # candidates (and any other window this close to flat) are checked value by value.
        close = np.flatnonzero(s <= n * (4 * n * _EPS * m) ** 2)
        if close.size:
            values = x[(c0 + close)[:, None] - np.arange(n)]
            s[close[(values == values[:, :1]).all(axis=1)]] = 0.0
        np.divide(s, n - ddof, out=s)
        np.sqrt(s, out=sd[c0:c1])
    return mean, sd
