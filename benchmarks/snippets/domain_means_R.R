# domain_means, R survey: svyby(~y, ~area, des, svymean), Taylor, nest=TRUE.
suppressPackageStartupMessages(library(survey))
load_data <- function(cols, params) {
  data.frame(stratum = cols$stratum, psu = cols$psu, area = cols$area,
             w = cols$w, y = cols$y)
}
setup <- function(df, params) {
  svydesign(ids = ~psu, strata = ~stratum, weights = ~w, nest = TRUE, data = df)
}
run <- function(des, params) svyby(~y, ~area, des, svymean)
extract <- function(des, res, params) {
  o <- order(res$area)
  list(estimate = coef(res)[o], se = SE(res)[o], area = res$area[o])
}
