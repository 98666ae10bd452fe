"""Regime labels: a user's file (strictly validated) or a generated labeler; profiles and class balance."""
from regime_platform.labels.assign import (
    KnownRegime,
    LabelResult,
    assign,
    assign_generated,
    assign_user,
    configured_regimes,
    known_regime_at,
)
from regime_platform.labels.class_balance import ClassBalance, class_balance
from regime_platform.labels.labelers import LABELERS, Labeler, labelable, make_labeler
from regime_platform.labels.names import REGIME_NAMES, names_by_id, regime_label, regime_name, regime_names
from regime_platform.labels.profile import RegimeProfile, regime_profile, regime_statistics
from regime_platform.labels.user_file import LabelFileError, read_user_labels
from regime_platform.labels.version import labels_version

__all__ = ["ClassBalance", "assign", "configured_regimes", "known_regime_at", "KnownRegime", "labels_version", "LABELERS", "LabelFileError", "LabelResult", "Labeler",
           "REGIME_NAMES", "RegimeProfile", "assign_generated", "assign_user", "class_balance", "labelable",
           "make_labeler", "names_by_id", "read_user_labels", "regime_label", "regime_name", "regime_names",
           "regime_profile", "regime_statistics"]
