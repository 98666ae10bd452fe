"""``ensemble``: the average of its members' calibrated probabilities (by default logistic, random_forest, lstm, cnn).

The training code (:func:`regime_platform.modeling.training.fit_model`) fits each member exactly as it fits that model on
its own — on the whole training span, the LSTM and CNN with their epochs chosen on the span's embargoed tail — and
temperature-scales each member's probabilities on that same tail (:mod:`regime_platform.models.calibration`), so that a
0.7 from the forest and a 0.7 from the LSTM mean the same thing before they are averaged. :meth:`assemble` then
joins the fitted members; the ensemble's probabilities are their unweighted mean. (``fit`` called directly fits
the members plainly, without the tail: what a quick experiment needs.) Saved as one sub-directory per member.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from regime_platform.models.base import RegimeModel
from regime_platform.models.registry import MODELS, accepted_params, load_model, make_model

SHARED = ("class_weighting", "oversampling", "seed")


def member_fit_sizes(members: list[RegimeModel]) -> dict:
    """Each member's measured fit size, and the ensemble's ``n_fit``: the fewest samples any member was fit on."""
    sizes = {m.name: int(m.fit_info["n_fit"]) for m in members}
    return {"member_n_fit": sizes, "n_fit": min(sizes.values())}


class EnsembleModel(RegimeModel):
    name = "ensemble"
    kind = "scikitlearn"
    composite = True
    defaults = {"members": "logistic,random_forest,lstm,cnn", "class_weighting": True, "oversampling": "none",
                "seed": 0}

    def member_names(self) -> list[str]:
        names = [m.strip() for m in str(self.params["members"]).split(",") if m.strip()]
        bad = [m for m in names if m not in MODELS or MODELS[m].is_baseline or m == self.name]
        if not names or bad:
            raise ValueError(f"ensemble members {bad or names!r} are not usable; list non-baseline models, e.g. "
                             "members='logistic,random_forest'.")
        return names

    def _fit(self, X, y, X_val, y_val, log, sample_weight=None) -> None:
        shared = {k: self.params[k] for k in SHARED}
        self.members_ = []
        for m in self.member_names():
            extra = {"X_val": X_val, "y_val": y_val} if X_val is not None else {}
            if sample_weight is not None:  # every member learns from the same weighted samples
                extra["sample_weight"] = sample_weight
            self.members_.append(make_model(m, **accepted_params(m, shared)).fit(X, y, n_classes=self.n_classes,
                                                                                  **extra))
        self.fit_info.update(members=[m.name for m in self.members_], **member_fit_sizes(self.members_))

    def assemble(self, members: list[RegimeModel], n_classes: int) -> "EnsembleModel":
        """Join members fitted by the training code (same span, same windows) into this ensemble."""
        names = self.member_names()
        if [m.name for m in members] != names:
            raise ValueError(f"ensemble expects members {names}, got {[m.name for m in members]}")
        self.members_ = list(members)
        self.n_classes, self.window, self.n_features = int(n_classes), members[0].window, members[0].n_features
        self.fit_info = {"members": names, "member_temperatures": {m.name: m.temperature for m in members},
                         "member_epochs": {m.name: m.fit_info.get("epochs") for m in members},
                         "member_calibration": {m.name: m.fit_info.get("calibration") for m in members},
                         **member_fit_sizes(members)}
        return self

    def _predict_proba(self, X, known_regime) -> np.ndarray:
        return np.mean([m.predict_proba(X, known_regime=known_regime) for m in self.members_], axis=0)

    def _save_state(self, directory: Path) -> list[Path]:
        files = []
        for m in self.members_:
            files += m.save(directory / m.name)
        return files

    def _load_state(self, directory: Path, cfg: dict) -> None:
        self.members_ = [load_model(directory / m) for m in self.member_names()]
