# Reference for unmetneed.sae.fit_measurement_error with no covariate error
# (every C_a = 0): the model is then the Fay-Herriot model with the Fay-Herriot
# moment estimator of sigma2, which is the Paule-Mandel estimator of a
# meta-regression (metafor's method = "PM"); the predictor is metafor's blup().
#   Rscript tests/reference/sae/measurement_error_pm.R   (from the repository root)
suppressMessages({library(metafor); library(jsonlite)})
d <- read.csv("tests/reference/sae/data/fh_main.csv")
fit <- rma(yi = y, vi = v, mods = ~ x1 + x2, data = d, method = "PM", test = "z",
           control = list(tol = 1e-13))  # uniroot tolerance; the default (eps^0.25) stops 1e-5 short
b <- blup(fit)
out <- list(
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  data = "data/fh_main.csv",
  formula = "y ~ x1 + x2",
  tau2 = fit$tau2,
  beta = as.numeric(fit$beta),
  vb = unname(fit$vb),
  blup = as.numeric(b$pred),
  blup_se = as.numeric(b$se)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/sae/measurement_error_pm.json")
