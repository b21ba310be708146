"""Survey designs, estimators and their variances (Taylor and replicate)."""

from unmetneed.datasets.builders import register_builder
from unmetneed.design.chisq import ChisqResult
from unmetneed.design.estimates import Estimates
from unmetneed.design.glm import GLMByResult, GLMResult
from unmetneed.design.survey_design import SurveyDesign

# datasets (the layer below) builds its survey designs with this class.
register_builder("survey_design", SurveyDesign)

__all__ = ["ChisqResult", "Estimates", "GLMByResult", "GLMResult", "SurveyDesign"]
