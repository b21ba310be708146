"""The design layer's option sets: one ``Literal`` alias each.

Every function that takes one of these options checks it with
:func:`unmetneed._validate.check_choice` against the alias itself (its values
are read with :func:`typing.get_args`), so a set is written once. Layers above
(the CLI's config schema) import the aliases from here.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "REPLICATE_INTERVALS",
    "TAYLOR_INTERVALS",
    "CIMethod",
    "ChisqStatistic",
    "GLMFamily",
    "LonelyPSU",
    "PredictionScale",
    "QuantileInterval",
    "QuantileRule",
    "ReplicateKind",
    "ReplicateMethod",
]

LonelyPSU = Literal["fail", "adjust", "certainty", "average", "remove"]
"""R survey's ``survey.lonely.psu`` policies."""

ReplicateMethod = Literal["jk1", "jkn", "brr", "fay", "bootstrap"]
"""Replicate-weight schemes :meth:`~unmetneed.SurveyDesign.replicate` builds."""

ReplicateKind = Literal[ReplicateMethod, "other"]
"""What a design's replicate weights are: a built scheme, or ``"other"`` (supplied by the user)."""

CIMethod = Literal["mean", "logit", "likelihood", "asin", "beta", "xlogit"]
"""Proportion intervals, as R's ``svyciprop(method=)``."""

QuantileRule = Literal[
    "math", "school", "shahvaish", "hf1", "hf2", "hf3", "hf4", "hf5", "hf6", "hf7", "hf8", "hf9"
]
"""R ``svyquantile``'s ``qrule``."""

QuantileInterval = Literal["mean", "beta", "xlogit", "asin", "score", "quantile"]
"""Quantile intervals; which apply depends on the design (below)."""

TAYLOR_INTERVALS: tuple[str, ...] = tuple(i for i in get_args(QuantileInterval) if i != "quantile")
REPLICATE_INTERVALS: tuple[str, ...] = tuple(i for i in get_args(QuantileInterval) if i != "score")

ChisqStatistic = Literal["F", "Chisq", "Wald", "adjWald", "lincom", "saddlepoint"]
"""R ``svychisq``'s ``statistic``."""

PredictionScale = Literal["link", "response"]
"""What :meth:`GLMResult.predict` returns: the linear predictor or the mean."""

GLMFamily = Literal["gaussian", "binomial", "quasibinomial", "poisson", "quasipoisson"]
"""Families :meth:`~unmetneed.SurveyDesign.glm` fits."""
