# Reference values for two additions to the design-based analysis (issue 14):
#   * svyvar of several variables at once (the p x p matrix, its SEs and the
#     covariance of its p^2 entries), overall, with na.rm and by domain;
#   * vcov() of svyquantile results, overall and under svyby.
# Same data and designs as analysis.R (run that first: it writes
# data/analysis_clus.csv). Kept in its own file so analysis.json is untouched.
#
# Run from anywhere:   Rscript tests/reference/design/analysis_var_vcov.R
# Writes analysis_var_vcov.json beside itself; deterministic. Every double is
# written with 17 significant digits; NA (R's off-diagonal quantile
# covariances) is written as null.
suppressMessages(library(survey))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
datadir <- file.path(here, "data")

source(file.path(here, "..", "json17.R"))  # json_writer() and sc()
json <- json_writer(",\n")

d <- read.csv(file.path(datadir, "analysis_clus.csv"), stringsAsFactors = FALSE)
d$dom <- factor(d$dom, levels = c("D1", "D2", "D3", "D4", "D5"))
taylor <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, fpc = ~fpc_psu, nest = TRUE, data = d)
jkn <- as.svrepdesign(taylor, type = "JKn")
Q <- c(0.25, 0.5, 0.9)

# svyvar(~a + b): a p x p matrix; coef/SE/attr(, "var") list its p^2 entries
# column by column (symmetric, so also row by row).
var_out <- function(v) {
  list(estimate = unname(as.vector(coef(v))), se = unname(as.vector(SE(v))),
       vcov = unname(as.matrix(attr(v, "var"))))
}

run <- function(des) {
  df <- degf(des)
  out <- list(degf = sc(df))
  out$var_multi <- var_out(svyvar(~y + x, des))
  out$var_multi3 <- var_out(svyvar(~y + x + count, des))
  out$var_multi_na <- var_out(svyvar(~y_na + x_na, des, na.rm = TRUE))
  # svyby: coef lists domain fastest, then entry; SE is a domain x entry table
  b <- svyby(~y + x, ~dom, des, svyvar)
  out$var_multi_by <- list(dom = levels(d$dom), estimate = unname(as.vector(coef(b))),
                           se = unname(as.vector(as.matrix(SE(b)))))
  # vcov(svyquantile): SE^2 on the diagonal, NA elsewhere
  q <- svyquantile(~y, des, quantiles = Q, ci = TRUE, df = df)
  out$quantile_vcov <- list(se = unname(as.vector(SE(q))), vcov = unname(vcov(q)))
  q2 <- svyquantile(~y + x, des, quantiles = Q, ci = TRUE, df = df)
  out$quantile_vcov_two <- list(se = unname(as.vector(SE(q2))), vcov = unname(vcov(q2)))
  # under svyby (no covmat: svyquantile returns no influence functions),
  # vcov.svyby warns "Only diagonal elements of vcov() available" and fills
  # the off-diagonal with 0. Names are "D1:y.0.25": quantile slowest.
  b <- svyby(~y, ~dom, des, svyquantile, quantiles = Q, ci = TRUE, df = df, vartype = c("se", "ci"))
  vb <- suppressWarnings(vcov(b))
  out$quantile_vcov_by <- list(names = rownames(vb), vcov = unname(vb))
  out
}

result <- list(
  generator = sc("tests/reference/design/analysis_var_vcov.R"),
  r_version = sc(R.version.string),
  survey_version = sc(as.character(packageVersion("survey"))),
  data = sc("data/analysis_clus.csv"),
  taylor_call = sc("svydesign(ids = ~psu, strata = ~stratum, weights = ~w, fpc = ~fpc_psu, nest = TRUE, data = d)"),
  replicate_call = sc("as.svrepdesign(taylor, type = \"JKn\")"),
  quantiles = Q,
  taylor = run(taylor),
  jkn = run(jkn)
)
writeLines(json(result), file.path(here, "analysis_var_vcov.json"))
cat("wrote", file.path(here, "analysis_var_vcov.json"), "\n")
