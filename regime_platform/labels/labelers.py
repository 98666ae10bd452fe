"""Generated regime labelers behind one interface: fit on a span, assign to any span.

Each gives `predict` (the best, hindsight assignment: the target) and `predict_online` (the causal
assignment at each date: row t uses rows ≤ t only — what was known after the close of t). Ids are ordered
by the volatility of daily log returns in the fit span, 0 = calmest, so an id means the same thing across
refits and labelers; each fit records its mapping from the labeler's raw states.

Input frames: one ticker, sorted by date, with `date`, `adj_close` and feature columns. Call
`labelable(frame, labeler)` first: it keeps the rows where the labeler's inputs exist.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from regime_platform.labels import profile
from regime_platform.labels.names import regime_names


def log_returns(frame: pl.DataFrame) -> np.ndarray:
    """The daily log returns of a frame's adj_close (:func:`regime_platform.labels.profile.log_returns`)."""
    return profile.log_returns(frame["adj_close"].to_numpy())


def order_by_volatility(raw: np.ndarray, returns: np.ndarray, k: int) -> dict[int, int]:
    """Raw state → id, 0 = the state whose days have the lowest std of daily returns (empty states last)."""
    vols = []
    for state in range(k):
        r = returns[(raw == state) & np.isfinite(returns)]
        vols.append(np.std(r) if r.size > 1 else np.inf)
    return {int(state): rank for rank, state in enumerate(np.argsort(vols, kind="stable"))}


class Labeler:
    name: str = ""
    n_regimes: int = 2
    required_columns: list[str] = ["adj_close"]

    def __init__(self) -> None:
        self.state_mapping: dict[int, int] = {}
        self.fit_start = self.fit_end = None

    def _record_span(self, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            raise ValueError(f"{self.name}: nothing to fit on (no rows with {self.required_columns})")
        self.fit_start, self.fit_end = frame["date"][0], frame["date"][-1]

    def _mapped(self, raw: np.ndarray) -> np.ndarray:
        return np.array([self.state_mapping[int(s)] for s in raw], dtype=np.int64)

    @property
    def regime_names(self) -> list[str]:
        return regime_names(self.n_regimes)

    def fit(self, frame: pl.DataFrame) -> "Labeler":
        raise NotImplementedError

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def predict_online(self, frame: pl.DataFrame) -> np.ndarray:
        raise NotImplementedError


class Standardized:
    """Mean/std of the inputs over the fit span only; optionally clipped at `clip` stds first (outliers such
    as a crash day would otherwise get a state of their own)."""

    def __init__(self, clip: float | None = None):
        self.clip = clip

    def fit(self, X: np.ndarray) -> "Standardized":
        if self.clip:
            mean, std = X.mean(axis=0), X.std(axis=0)
            self.low, self.high = mean - self.clip * std, mean + self.clip * std
            X = np.clip(X, self.low, self.high)
        self.mean, self.std = X.mean(axis=0), X.std(axis=0)
        self.std[self.std == 0] = 1.0
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.clip:
            X = np.clip(X, self.low, self.high)
        return (X - self.mean) / self.std


class KMeansLabeler(Labeler):
    """The original specification's labels, for parity: K-Means (K=3) on vol_5d, vol_20d, rsi_14.

    Point-wise, so `predict` and `predict_online` agree and both are causal; fit on the fit span only
    (the specification fit on all history, which leaked the future into the labels).
    """

    name = "kmeans"
    required_columns = ["adj_close", "vol_5d", "vol_20d", "rsi_14"]

    def __init__(self, n_regimes: int = 3, random_state: int = 0):
        super().__init__()
        self.n_regimes, self.random_state = n_regimes, random_state

    def _inputs(self, frame):
        return frame.select(self.required_columns[1:]).to_numpy().astype(float)

    def fit(self, frame):
        from sklearn.cluster import KMeans

        self._record_span(frame)
        X = self._inputs(frame)
        self.scaler = Standardized().fit(X)
        self.model = KMeans(n_clusters=self.n_regimes, n_init=10, random_state=self.random_state)
        raw = self.model.fit_predict(self.scaler.transform(X))
        self.state_mapping = order_by_volatility(raw, log_returns(frame), self.n_regimes)
        return self

    def predict(self, frame):
        return self._mapped(self.model.predict(self.scaler.transform(self._inputs(frame))))

    predict_online = predict


DOWNSIDE_FLOOR = 1e-4  # 0.01 % a day: keeps log downside deviation finite on days after only gains


def ewm_return_shape(returns: np.ndarray, half_life: float) -> tuple[np.ndarray, np.ndarray]:
    """The exponentially weighted mean and downside deviation (floored at DOWNSIDE_FLOOR) of daily log returns
    at one half-life, causal (row t uses returns up to t; a missing return counts as 0)."""
    r = pl.Series(np.nan_to_num(np.asarray(returns, dtype=float), nan=0.0))
    downside = pl.Series(np.minimum(r.to_numpy(), 0.0) ** 2)
    mean = r.ewm_mean(half_life=half_life, adjust=False).to_numpy()
    dd = np.maximum(np.sqrt(downside.ewm_mean(half_life=half_life, adjust=False).to_numpy()), DOWNSIDE_FLOOR)
    return mean, dd


def jump_features(frame: pl.DataFrame, half_lives=(5, 10, 21)) -> np.ndarray:
    """Shu, Yu & Mulvey (2024): exponentially weighted return, log downside deviation and Sortino ratio
    at several half-lives, all causal (row t uses returns up to t)."""
    returns = log_returns(frame)
    columns = []
    for hl in half_lives:
        mean, dd = ewm_return_shape(returns, hl)
        columns += [mean, np.log(dd), mean / dd]
    return np.column_stack(columns)


class JumpLabeler(Labeler):
    """Statistical jump model (jumpmodels): K-means with a penalty on every switch, so regimes persist.

    `jump_penalty` trades persistence for fit: higher means fewer, longer regimes. 50 on standardized
    features gives a few switches a year on the S&P 500 (calm vs turbulent markets).
    """

    name = "jump"

    def __init__(self, n_regimes: int = 2, jump_penalty: float = 50.0, random_state: int = 0):
        super().__init__()
        self.n_regimes, self.jump_penalty, self.random_state = n_regimes, jump_penalty, random_state

    def fit(self, frame):
        from jumpmodels.jump import JumpModel

        self._record_span(frame)
        X = jump_features(frame)
        self.scaler = Standardized(clip=3.0).fit(X)
        returns = np.nan_to_num(log_returns(frame), nan=0.0)
        self.model = JumpModel(n_components=self.n_regimes, jump_penalty=self.jump_penalty,
                               random_state=self.random_state)
        self.model.fit(self.scaler.transform(X), ret_ser=returns, sort_by="vol")
        raw = np.asarray(self.model.predict(self.scaler.transform(X)))
        self.state_mapping = order_by_volatility(raw, returns, self.n_regimes)
        return self

    def predict(self, frame):
        return self._mapped(np.asarray(self.model.predict(self.scaler.transform(jump_features(frame)))))

    def predict_online(self, frame):
        return self._mapped(np.asarray(self.model.predict_online(self.scaler.transform(jump_features(frame)))))


class HMMLabeler(Labeler):
    """Gaussian HMM (hmmlearn) on daily return and 20-session volatility.

    `predict` is Viterbi over the whole span (hindsight). `predict_online` is the argmax of the FILTERED
    probabilities (forward pass only): hmmlearn's predict_proba is forward-backward and looks ahead.
    """

    name = "hmm"
    required_columns = ["adj_close", "ret_1d", "vol_20d"]

    def __init__(self, n_regimes: int = 2, random_state: int = 0, n_iter: int = 200):
        super().__init__()
        self.n_regimes, self.random_state, self.n_iter = n_regimes, random_state, n_iter

    def _inputs(self, frame):
        return self.scaler.transform(frame.select("ret_1d", "vol_20d").to_numpy().astype(float))

    def fit(self, frame):
        from hmmlearn.hmm import GaussianHMM

        self._record_span(frame)
        self.scaler = Standardized().fit(frame.select("ret_1d", "vol_20d").to_numpy().astype(float))
        self.model = GaussianHMM(n_components=self.n_regimes, covariance_type="full", n_iter=self.n_iter,
                                 random_state=self.random_state)
        X = self._inputs(frame)
        self.model.fit(X)
        self.state_mapping = order_by_volatility(self.model.predict(X), log_returns(frame), self.n_regimes)
        return self

    def predict(self, frame):
        return self._mapped(self.model.predict(self._inputs(frame)))

    def filtered_probabilities(self, frame) -> np.ndarray:
        from hmmlearn import _hmmc

        m = self.model
        _, fwd = _hmmc.forward_log(m.startprob_, m.transmat_, m._compute_log_likelihood(self._inputs(frame)))
        fwd = fwd - fwd.max(axis=1, keepdims=True)
        p = np.exp(fwd)
        return p / p.sum(axis=1, keepdims=True)

    def predict_online(self, frame):
        return self._mapped(self.filtered_probabilities(frame).argmax(axis=1))


class DrawdownLabeler(Labeler):
    """Bull (0) / bear (1): a bear market starts at a peak once the price has fallen `threshold` below it
    and lasts until the trough once the price has risen `threshold` above that trough.

    `predict` dates each bear from the day after its peak to its trough (hindsight); `predict_online` is
    the rule as confirmed that day: bear from the day the fall is confirmed until the day the rise is.
    A rule, not a fit: `fit` records the span only.
    """

    name = "drawdown"

    def __init__(self, threshold: float = 0.20):
        super().__init__()
        self.threshold = threshold
        self.state_mapping = {0: 0, 1: 1}

    @property
    def regime_names(self):
        return ["bull", "bear"]

    def fit(self, frame):
        self._record_span(frame)
        return self

    def _walk(self, p: np.ndarray):
        """(hindsight labels, online labels) in one causal pass; hindsight is filled back to each extreme."""
        n = len(p)
        hindsight, online = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        bear = False
        extreme_at = 0  # the running peak (in a bull) or trough (in a bear)
        for t in range(n):
            if not bear:
                if p[t] > p[extreme_at]:
                    extreme_at = t
                elif p[t] <= p[extreme_at] * (1 - self.threshold):
                    bear, peak = True, extreme_at
                    hindsight[peak + 1:t + 1] = 1
                    extreme_at = t
            else:
                if p[t] < p[extreme_at]:
                    extreme_at = t
                elif p[t] >= p[extreme_at] * (1 + self.threshold):
                    bear = False
                    hindsight[extreme_at + 1:t + 1] = 0
                    extreme_at = t
            online[t] = int(bear)
            if bear:
                hindsight[t] = 1
        return hindsight, online

    def predict(self, frame):
        return self._walk(frame["adj_close"].to_numpy().astype(float))[0]

    def predict_online(self, frame):
        return self._walk(frame["adj_close"].to_numpy().astype(float))[1]


LABELERS: dict[str, type[Labeler]] = {
    "kmeans": KMeansLabeler,
    "jump": JumpLabeler,
    "hmm": HMMLabeler,
    "drawdown": DrawdownLabeler,
}


def make_labeler(name: str, **params) -> Labeler:
    if name not in LABELERS:
        raise ValueError(f"labeler {name!r} is unknown; use one of {', '.join(LABELERS)} (REGIME_LABELER).")
    return LABELERS[name](**params)


def labelable(frame: pl.DataFrame, labeler: Labeler) -> pl.DataFrame:
    """The rows where the labeler's inputs all exist (warm-up rows dropped), in date order."""
    return frame.sort("date").drop_nulls(subset=labeler.required_columns)
