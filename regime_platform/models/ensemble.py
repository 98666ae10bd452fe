"""``ensemble``: the average of its member models' probabilities (by default logistic and random_forest).

Each member is fit on exactly the windows the ensemble gets (the same training span, class weighting,
oversampling and seed) and the ensemble's probabilities are the unweighted mean of the members'. The
probabilities are averaged as each member gives them, without a separate calibration step: a calibration
fit would need its own held-out slice of the training span, which the walk-forward already spends on the
inner validation. The sequence models can be members (``members="logistic,random_forest,lstm"``) at the cost
of fitting them twice. Saved as one sub-directory per member.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from regime_platform.models.base import RegimeModel

SHARED = ("class_weighting", "oversampling", "seed")


class EnsembleModel(RegimeModel):
    name = "ensemble"
    defaults = {"members": "logistic,random_forest", "class_weighting": True, "oversampling": "none", "seed": 0}

    def member_names(self) -> list[str]:
        from regime_platform.models import MODELS

        names = [m.strip() for m in str(self.params["members"]).split(",") if m.strip()]
        bad = [m for m in names if m not in MODELS or MODELS[m].is_baseline or m == self.name]
        if not names or bad:
            raise ValueError(f"ensemble members {bad or names!r} are not usable; list non-baseline models, e.g. "
                             "members='logistic,random_forest'.")
        return names

    def _fit(self, X, y, X_val, y_val, log) -> None:
        from regime_platform.models import accepted_params, make_model

        shared = {k: self.params[k] for k in SHARED}
        self.members_ = []
        for m in self.member_names():
            extra = {"X_val": X_val, "y_val": y_val} if X_val is not None else {}
            self.members_.append(make_model(m, **accepted_params(m, shared)).fit(X, y, n_classes=self.n_classes,
                                                                                  **extra))
        self.fit_info["members"] = [m.name for m in self.members_]

    def _predict_proba(self, X, known_regime) -> np.ndarray:
        return np.mean([m.predict_proba(X, known_regime=known_regime) for m in self.members_], axis=0)

    def _save_state(self, directory: Path) -> list[Path]:
        files = []
        for m in self.members_:
            files += m.save(directory / m.name)
        return files

    def _load_state(self, directory: Path, cfg: dict) -> None:
        from regime_platform.models import load_model

        self.members_ = [load_model(directory / m) for m in self.member_names()]
