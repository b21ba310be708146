"""Survey designs, estimators and their variances (Taylor and replicate)."""

from unmetneed.design.estimates import Estimates
from unmetneed.design.survey_design import SurveyDesign

__all__ = ["Estimates", "SurveyDesign"]
