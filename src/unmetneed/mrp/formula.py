"""Split a multilevel formula into its response, fixed part and random intercepts.

``"need ~ sex + deprivation + (1|area_code) + (1|age_band)"``: the fixed part
(``sex + deprivation``) is handed to formulaic (treatment contrasts, the first
category as reference, as R's default); each ``(1|group)`` is a random
intercept for ``group``. Random slopes are not supported and are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from unmetneed.errors import ModelError

__all__ = ["ModelFormula", "parse_formula"]

_RANDOM = re.compile(r"\(\s*([^()|]*?)\s*\|\s*([^()|]*?)\s*\)")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class ModelFormula:
    """The parts of a formula."""

    text: str
    response: str
    fixed: str  # right-hand side for formulaic ("1" for intercept only)
    groups: tuple[str, ...]

    @property
    def fixed_variables(self) -> list[str]:
        """Data columns named in the fixed part (best effort, for validation)."""
        tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", self.fixed)
        reserved = {"C", "I", "np", "log", "exp", "center", "scale", "poly", "bs", "Treatment"}
        return [t for t in dict.fromkeys(tokens) if t not in reserved]


def parse_formula(formula: str) -> ModelFormula:
    """Parse ``"y ~ fixed + (1|g1) + (1|g2)"``.

    Examples
    --------
    >>> from unmetneed.mrp.formula import parse_formula
    >>> f = parse_formula("need ~ sex + (1|area_code) + (1 | age_band)")
    >>> f.response, f.fixed, f.groups
    ('need', 'sex', ('area_code', 'age_band'))
    """
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ModelError(f"formula {formula!r} must have one '~', e.g. 'need ~ sex + (1|area_code)'")
    left, right = (part.strip() for part in formula.split("~"))
    if not _NAME.match(left):
        raise ModelError(
            f"the response {left!r} must be a column name (for successes out of trials, "
            "name the successes column here and pass trials=)"
        )
    groups = []
    for term, group in _RANDOM.findall(right):
        if term != "1":
            raise ModelError(
                f"random term ({term} | {group}) is not supported: only random intercepts (1 | group) are"
            )
        if not _NAME.match(group):
            raise ModelError(f"grouping factor {group!r} in ({term} | {group}) must be a column name")
        if group in groups:
            raise ModelError(f"(1 | {group}) appears twice in {formula!r}")
        groups.append(group)
    fixed = _RANDOM.sub("", right)
    fixed = re.sub(r"\+(\s*\+)+", "+", fixed)  # runs of '+' left by any number of random terms
    fixed = re.sub(r"^\s*\+|\+\s*$", "", fixed.strip()).strip()
    fixed = re.sub(r"\+\s*$", "", fixed).strip()
    if "|" in fixed or "(" in fixed and ")" not in fixed:
        raise ModelError(f"could not read the random terms of {formula!r}; write them as (1 | group)")
    if not fixed:
        fixed = "1"
    if not groups:
        raise ModelError(f"formula {formula!r} has no random intercept; add at least one (1 | group)")
    return ModelFormula(text=formula, response=left, fixed=fixed, groups=tuple(groups))
