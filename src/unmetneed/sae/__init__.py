"""Area-level small-area estimation: the Fay-Herriot model.

``FayHerriot(data, estimate, variance, formula, area).fit()`` shrinks direct
estimates towards a regression on area covariates (EBLUP), with Prasad-Rao /
Datta-Lahiri MSE estimates, synthetic predictions for areas without a direct
estimate and optional benchmarking to a known total. ``smooth_variances``
replaces noisy direct variances by a generalised variance function.
``fit_measurement_error`` is the model with covariates that are themselves
estimates (Ybarra & Lohr, 2008).
"""

from unmetneed.sae.fay_herriot import (
    BenchmarkMethod,
    FayHerriot,
    FayHerriotFit,
    FitMethod,
)
from unmetneed.sae.gvf import smooth_variances
from unmetneed.sae.measurement_error import MeasurementErrorFit, fit_measurement_error
from unmetneed.sae.mse import MSEComponents

__all__ = [
    "BenchmarkMethod",
    "FayHerriot",
    "FayHerriotFit",
    "FitMethod",
    "MSEComponents",
    "MeasurementErrorFit",
    "fit_measurement_error",
    "smooth_variances",
]
