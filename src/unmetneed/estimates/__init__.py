"""The estimates people ask for: care needs, who meets them, self-funders, unmet need."""

from unmetneed.estimates.care import (
    PARTS,
    QUANTITIES,
    BenchmarkWarning,
    CareEstimates,
    CareModel,
    default_formula,
    estimate_care_populations,
    fit_care_model,
)
from unmetneed.estimates.care_homes import (
    CareHomeFundingEstimates,
    estimate_care_home_funding,
)
from unmetneed.estimates.carers import (
    CARER_QUANTITIES,
    CarerEstimates,
    KnownExceedsCensusWarning,
    estimate_carers,
)
from unmetneed.estimates.council_funded import (
    CouncilFundedEstimates,
    estimate_council_funded,
)
from unmetneed.estimates.residual import residual_estimate
from unmetneed.estimates.settings import (
    SETTINGS,
    SettingEstimates,
    care_home_populations,
    combine_settings,
    split_settings,
    with_council_composition,
)

__all__ = [
    "CARER_QUANTITIES",
    "PARTS",
    "QUANTITIES",
    "SETTINGS",
    "BenchmarkWarning",
    "CareEstimates",
    "CareHomeFundingEstimates",
    "CareModel",
    "CarerEstimates",
    "CouncilFundedEstimates",
    "KnownExceedsCensusWarning",
    "SettingEstimates",
    "care_home_populations",
    "combine_settings",
    "default_formula",
    "estimate_care_home_funding",
    "estimate_care_populations",
    "estimate_carers",
    "estimate_council_funded",
    "fit_care_model",
    "residual_estimate",
    "split_settings",
    "with_council_composition",
]
