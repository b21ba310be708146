"""unmetneed: who needs adult social care in England and does not get it.

Survey designs with Taylor and replicate variance equal to R ``survey``,
weighting to census margins, and multilevel regression and poststratification.

Examples
--------
The example survey's design (built as :class:`SurveyDesign`'s example shows):

>>> import unmetneed as um
>>> design = um.datasets.load_example_design()
>>> design.mean("need", by="area_code").to_frame().shape
(10, 7)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from unmetneed import datasets, disclosure, errors, harmonise, io
from unmetneed.coverage import CoverageReport, coverage_gaps
from unmetneed.design import Estimates, SurveyDesign
from unmetneed.estimates import (
    CareEstimates,
    CareHomeFundingEstimates,
    CareModel,
    CarerEstimates,
    CouncilFundedEstimates,
    estimate_care_home_funding,
    estimate_care_populations,
    estimate_carers,
    estimate_council_funded,
    fit_care_model,
    residual_estimate,
)
from unmetneed.io.care_homes import read_care_home_register, read_provider_returns
from unmetneed.io.unpaid_care import read_unpaid_care_msoa
from unmetneed.margins import Margins
from unmetneed.mrp import (
    DrawEstimates,
    MultilevelFit,
    MultilevelModel,
    PopulationFrame,
    synthetic_frame,
)
from unmetneed.sae import FayHerriot, FayHerriotFit
from unmetneed.weighting import (
    DaskWeightingResult,
    WeightingReport,
    WeightingResult,
    adjust_nonresponse,
    calibrate,
    poststratify,
    rake,
    trim,
)

try:
    __version__ = version("unmetneed")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "CareEstimates",
    "CareHomeFundingEstimates",
    "CareModel",
    "CarerEstimates",
    "CouncilFundedEstimates",
    "CoverageReport",
    "DaskWeightingResult",
    "DrawEstimates",
    "Estimates",
    "FayHerriot",
    "FayHerriotFit",
    "Margins",
    "MultilevelFit",
    "MultilevelModel",
    "PopulationFrame",
    "SurveyDesign",
    "WeightingReport",
    "WeightingResult",
    "__version__",
    "adjust_nonresponse",
    "calibrate",
    "coverage_gaps",
    "datasets",
    "disclosure",
    "errors",
    "estimate_care_home_funding",
    "estimate_care_populations",
    "estimate_carers",
    "estimate_council_funded",
    "fit_care_model",
    "harmonise",
    "io",
    "poststratify",
    "rake",
    "read_care_home_register",
    "read_provider_returns",
    "read_unpaid_care_msoa",
    "residual_estimate",
    "synthetic_frame",
    "trim",
]
