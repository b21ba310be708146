"""Exception and warning types raised by unmetneed.

Every error descends from :class:`UnmetneedError` and from :class:`ValueError`
(a missing column or category also from :class:`KeyError`), so callers can
catch either the library's base class or the builtin they already handle.
Messages name the column, category or value at fault and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BenchmarkWarning",
    "CalibrationError",
    "ConfigError",
    "ConvergenceWarning",
    "DesignError",
    "DisclosureError",
    "FrameError",
    "InconsistentTotalsWarning",
    "KnownExceedsCensusWarning",
    "LonelyPSUWarning",
    "MarginsError",
    "MissingColumnError",
    "ModelError",
    "NewLevelWarning",
    "OptionError",
    "ReadError",
    "SingularFitWarning",
    "UnmetneedError",
    "UnmetneedWarning",
]


class UnmetneedError(ValueError):
    """Base class of every error raised by unmetneed."""


class DesignError(UnmetneedError):
    """A survey design or an estimator was given invalid input."""


class MissingColumnError(DesignError, KeyError):
    """A column or category named by the caller does not exist.

    Also a :class:`KeyError`, so ``except KeyError`` keeps working.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class MarginsError(UnmetneedError):
    """Population margins are inconsistent or do not fit the design."""


class CalibrationError(UnmetneedError):
    """Calibration has no solution or did not converge."""


class ModelError(UnmetneedError):
    """A model could not be specified or fitted."""


class FrameError(UnmetneedError):
    """A poststratification frame is invalid."""


class ConfigError(UnmetneedError):
    """A configuration file is invalid."""


class ReadError(UnmetneedError):
    """A data file could not be read as asked.

    Its format or layout was not recognised (the message lists the column names
    seen and the ones expected), its content is invalid (non-numeric or negative
    counts, duplicated rows), or a download failed or did not match its checksum.
    """


class OptionError(UnmetneedError, ValueError):
    """An option is not one of its valid choices; the message lists them.

    Raised by :func:`unmetneed._validate.check_choice` for every ``Literal``
    option set (lonely-PSU policies, replicate and calibration methods, ...).
    """


class DisclosureError(UnmetneedError):
    """A table or its options cannot be put through disclosure control as asked."""


class UnmetneedWarning(UserWarning):
    """Base class of every warning issued by unmetneed."""


class ConvergenceWarning(UnmetneedWarning):
    """An iterative method stopped before converging (the caller asked to go on)."""


class LonelyPSUWarning(UnmetneedWarning):
    """A stratum has a single PSU and was handled by the design's lonely-PSU policy."""


class InconsistentTotalsWarning(UnmetneedWarning):
    """Published totals and the categories beneath them disagree (the caller asked to go on)."""


class NewLevelWarning(UnmetneedWarning):
    """Prediction met levels of a grouping factor that the model was not fitted on."""


class SingularFitWarning(UnmetneedWarning):
    """A random-effect standard deviation was estimated at (or next to) zero."""


class BenchmarkWarning(UnmetneedWarning):
    """Administrative counts lie far outside the model's posterior (a definition mismatch?).

    Issued by :meth:`~unmetneed.CareModel.populations` (and
    :func:`~unmetneed.estimate_care_populations`) when a council-funded count
    is more than 4 posterior SDs (log scale) from the model's: the counts and
    the frame may not cover the same people (setting, ages, year). Also
    ``unmetneed.estimates.BenchmarkWarning``.
    """


class KnownExceedsCensusWarning(UnmetneedWarning):
    """A council knows more carers than the census counts in it (kept, not clipped).

    Issued by :func:`~unmetneed.estimates.estimate_carers`. Also
    ``unmetneed.estimates.KnownExceedsCensusWarning``.
    """
