# Reference values for svyby(..., svyglm) (issue 14): per-domain design-based
# GLMs with the full design kept for the variance, on the stratified clustered
# design with fpc of analysis.R and on its JKn replicate version, by the
# 3-level factor r3, gaussian / binomial / quasibinomial.
#
# Run from anywhere:   Rscript tests/reference/design/analysis_glm_by.R
# Input: data/analysis_clus.csv (written by analysis.R). Writes
# analysis_glm_by.json beside itself. Deterministic. Every double is written
# with 17 significant digits.
#
# Two defects of survey 4.1.1 are worked around so that R's own code computes
# the covariance svyby(..., covmat = TRUE) is meant to give:
# * svyglm.survey.design(influence = TRUE) has the typo `estfun < model.matrix(g)`
#   (a comparison, not an assignment), so svyby(covmat = TRUE) on a Taylor
#   design stops with "object 'estfun' not found". The method is patched in the
#   namespace with `<-`; nothing else changes.
# * svyby on a replicate design passes `deff = deff` to FUN, which
#   svyglm.svyrep.design forwards to glm() and glm.control() rejects
#   ("unused argument (deff = ...)"). FUN is a wrapper that drops `deff`.
suppressMessages(library(survey))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
datadir <- file.path(here, "data")

source(file.path(here, "..", "json17.R"))  # json_writer() and sc()
json <- json_writer(",\n")

# ---- the influence typo ------------------------------------------------------
patched <- deparse(survey:::svyglm.survey.design)
hit <- grep("estfun < model.matrix", patched, fixed = TRUE)
stopifnot(length(hit) == 1)
patched[hit] <- sub("estfun < model.matrix", "estfun <- model.matrix", patched[hit], fixed = TRUE)
patched <- eval(parse(text = patched))
environment(patched) <- asNamespace("survey")
assignInNamespace("svyglm.survey.design", patched, "survey")
registerS3method("svyglm", "survey.design", patched, envir = asNamespace("survey"))

# do.call puts the family object itself into svyglm's call (svyglm.svyrep.design
# re-evaluates its own call, where a `family = ..1` or a local name is not found).
fit_glm <- function(formula, design, family, ...) do.call(svyglm, list(formula, design, family = family, ...))
glm_by_fun <- function(formula, design, deff = FALSE, ...) fit_glm(formula, design, ...)

# ---- data --------------------------------------------------------------------
d <- read.csv(file.path(datadir, "analysis_clus.csv"), stringsAsFactors = FALSE)
d$dom <- factor(d$dom, levels = c("D1", "D2", "D3", "D4", "D5"))
d$sex <- factor(d$sex, levels = c("Female", "Male"))
d$r3 <- factor(d$r3, levels = c("r1", "r2", "r3"))
taylor <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, fpc = ~fpc_psu, nest = TRUE, data = d)
jkn <- as.svrepdesign(taylor, type = "JKn")

CASES <- list(
  gaussian = list(formula = y ~ x + sex, family = gaussian()),
  binomial = list(formula = bin ~ x + sex, family = binomial()),
  quasibinomial = list(formula = bin ~ x + sex, family = quasibinomial()),
  # missing values (rows leave each domain's fit), and a 5-level domain whose
  # domains miss whole strata (D5 is absent from S1, D4 from S3, D1 from S5), so
  # that the domains' residual degrees of freedom differ
  gaussian_na = list(formula = y_na ~ x_na + sex, family = gaussian()),
  gaussian_dom = list(formula = y ~ x + sex, family = gaussian(), by = ~dom)
)

by_case <- function(des, case) {
  by <- if (is.null(case$by)) ~r3 else case$by
  g_by <- d[[all.vars(by)]]
  plain <- if (inherits(des, "svyrep.design")) NULL else
    suppressWarnings(svyby(case$formula, by, des, glm_by_fun, family = case$family))
  # With missing values R's Taylor covmat = TRUE stops (the influence matrix has
  # the domain's complete rows, svyby places it on all the domain's rows:
  # "number of items to replace is not a multiple of replacement length"):
  # then only the block-diagonal result is stored (vcov = null).
  fit_by <- tryCatch(
    suppressWarnings(svyby(case$formula, by, des, glm_by_fun, family = case$family, covmat = TRUE)),
    error = function(e) NULL)
  covmat_error <- is.null(fit_by)
  if (covmat_error) fit_by <- plain
  # each domain's own fit, as svyby makes it (design[by == level, ]): df, intervals
  per <- lapply(levels(g_by), function(lev) {
    g <- suppressWarnings(fit_glm(case$formula, des[g_by == lev, ], case$family))
    s <- coef(summary(g))
    ci <- confint(g)
    list(level = sc(lev), terms = rownames(s), estimate = unname(s[, 1]), se = unname(s[, 2]),
         statistic = unname(s[, 3]), p_value = unname(s[, 4]),
         ci_lower = unname(ci[, 1]), ci_upper = unname(ci[, 2]), df_resid = sc(g$df.residual))
  })
  list(by = sc(all.vars(by)), names = names(coef(fit_by)), estimate = unname(coef(fit_by)), se = unname(as.vector(SE(fit_by))),
       vcov = if (covmat_error) NULL else unname(vcov(fit_by)), covmat_error = sc(covmat_error),
       vcov_block_diagonal = if (is.null(plain)) NULL else unname(suppressWarnings(vcov(plain))),
       domains = per)
}

run <- function(des) lapply(CASES, function(case) by_case(des, case))

result <- list(
  generator = sc("tests/reference/design/analysis_glm_by.R"),
  r_version = sc(R.version.string),
  survey_version = sc(as.character(packageVersion("survey"))),
  data = sc("data/analysis_clus.csv"),
  taylor_call = sc("svydesign(ids = ~psu, strata = ~stratum, weights = ~w, fpc = ~fpc_psu, nest = TRUE, data = d)"),
  replicate_call = sc("as.svrepdesign(taylor, type = \"JKn\")"),
  by_call = sc("svyby(formula, ~r3, des, svyglm, family = family, covmat = TRUE)"),
  formulas = lapply(CASES, function(case) sc(deparse(case$formula))),
  taylor = run(taylor),
  jkn = run(jkn)
)
writeLines(json(result), file.path(here, "analysis_glm_by.json"))
cat("wrote", file.path(here, "analysis_glm_by.json"), "\n")
