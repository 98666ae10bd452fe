"""Why a model forecasts what it does: captum attributions for the sequence models (:mod:`.attributions`),
permutation importance for the scikit-learn models (:mod:`.permutation`), where the methods agree
(:mod:`.agreement`), what each regime looks like and how stable refits are (:mod:`.regime_profiles`), and the
figures and artifact of the explainability assets (:mod:`.figures`)."""
from regime_platform.explainability.agreement import (  # noqa: F401
    Agreement,
    feature_rankings,
    method_agreement,
)
from regime_platform.explainability.attributions import (  # noqa: F401
    ALL_FEATURES,
    ATTRIBUTION_SCHEMA,
    BASELINE_NOTE,
    METHOD_LABELS,
    PERMUTATION_METHODS,
    SEQUENCE_METHODS,
    AttributionSet,
    ProductionWindows,
    production_windows,
    recent_windows,
    sample_rows,
    sequence_attributions,
)
from regime_platform.explainability.permutation import (  # noqa: F401
    PermutationResult,
    WindowPermutationAdapter,
    permutation_importances,
)

__all__ = [
    "ALL_FEATURES",
    "ATTRIBUTION_SCHEMA",
    "Agreement",
    "AttributionSet",
    "BASELINE_NOTE",
    "METHOD_LABELS",
    "PERMUTATION_METHODS",
    "PermutationResult",
    "ProductionWindows",
    "SEQUENCE_METHODS",
    "WindowPermutationAdapter",
    "feature_rankings",
    "method_agreement",
    "permutation_importances",
    "production_windows",
    "recent_windows",
    "sample_rows",
    "sequence_attributions",
]
