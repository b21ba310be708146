"""Survey designs, estimators and their variances (Taylor and replicate)."""

from unmetneed.design.chisq import ChisqResult
from unmetneed.design.estimates import Estimates
from unmetneed.design.glm import GLMByResult, GLMResult
from unmetneed.design.survey_design import SurveyDesign

__all__ = ["ChisqResult", "Estimates", "GLMByResult", "GLMResult", "SurveyDesign"]
