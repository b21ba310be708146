# Reference values for binomial GLMMs with crossed random intercepts, from lme4.
#
# Run from anywhere:   Rscript tests/reference/mrp/glmm.R
# Writes the input datasets data/glmm_*.csv (generated here with fixed seeds,
# then read back so R fits exactly the values the CSVs hold) and the expected
# results glmm.json beside this script.
#
# Every number in glmm.json is printed by lme4; nothing is computed on the
# Python side. See README.md for the versions used and what each field means.

suppressPackageStartupMessages({
  library(lme4)
})

script_dir <- local({
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
})
data_dir <- file.path(script_dir, "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

# Category orders fixed here (sorted the same in every locale).
AGE_LEVELS <- c("18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+")
SEX_LEVELS <- c("Female", "Male")
FACTORS <- c("area", "age_band", "ethnic_group")

FORMULA_ROWS <- y ~ sex + deprivation + (1 | area) + (1 | age_band) + (1 | ethnic_group)
FORMULA_CELLS <- cbind(successes, n - successes) ~ sex + deprivation +
  (1 | area) + (1 | age_band) + (1 | ethnic_group)
PY_FORMULA_ROWS <- "y ~ sex + deprivation + (1|area) + (1|age_band) + (1|ethnic_group)"
PY_FORMULA_CELLS <- "successes ~ sex + deprivation + (1|area) + (1|age_band) + (1|ethnic_group)"
CONTROL <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
CONTROL_TEXT <- 'glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))'
# The same fit with PIRLS run to convergence (tolPwrss = 1e-13; lme4's default
# 1e-7 is a relative change in the penalised deviance between PIRLS steps) and
# a tighter bobyqa. At the default tolerance glmer's Laplace deviance function
# is off by ~2e-4 at the optimum and ~4e-3 a step of 0.05 away, which leaves
# the estimates within ~1e-4 but moves the finite-difference Hessian behind
# the default vcov(fit) by up to ~0.4%. "tight" in the JSON holds this fit;
# "stability" the differences between the two.
CONTROL_TIGHT <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-13,
                              optCtrl = list(maxfun = 1e6, rhoend = 1e-12))
CONTROL_TIGHT_TEXT <- paste0('glmerControl(optimizer = "bobyqa", tolPwrss = 1e-13, ',
                             'optCtrl = list(maxfun = 1e6, rhoend = 1e-12))')
# R's term names -> formulaic's
PY_TERM <- c("(Intercept)" = "Intercept", "sexMale" = "sex[T.Male]",
             "deprivation" = "deprivation")

# ---------------------------------------------------------------------------
# Data generation
# ---------------------------------------------------------------------------

# (a) main dataset: 4,000 rows, 60 areas, 8 age bands, 12 ethnic groups of
# very unequal size (three with fewer than 15 rows), area-level deprivation.
set.seed(20240701)
N_ROWS <- 4000
AREA_LEVELS <- sprintf("A%02d", 1:60)
ETH_LEVELS <- sprintf("E%02d", 1:12)
ETH_SIZES <- c(2140, 480, 360, 300, 240, 180, 120, 80, 72, 14, 9, 5)
stopifnot(sum(ETH_SIZES) == N_ROWS)
TRUTH <- list(intercept = -1.2, sexMale = 0.3, deprivation = 0.5,
              sd_area = 0.4, sd_age_band = 0.6, sd_ethnic_group = 0.3)

area_weight <- runif(60, 0.4, 1.6)            # unequal area sample sizes
area <- sample(AREA_LEVELS, N_ROWS, replace = TRUE, prob = area_weight)
age_band <- sample(AGE_LEVELS, N_ROWS, replace = TRUE,
                   prob = c(0.11, 0.16, 0.16, 0.16, 0.15, 0.13, 0.09, 0.04))
ethnic_group <- sample(rep(ETH_LEVELS, ETH_SIZES))
sex <- sample(SEX_LEVELS, N_ROWS, replace = TRUE)
dep_area <- round(as.numeric(scale(rnorm(60))), 6)   # standardised over areas
names(dep_area) <- AREA_LEVELS
u_area <- setNames(rnorm(60, 0, TRUTH$sd_area), AREA_LEVELS)
u_age <- setNames(rnorm(8, 0, TRUTH$sd_age_band), AGE_LEVELS)
u_eth <- setNames(rnorm(12, 0, TRUTH$sd_ethnic_group), ETH_LEVELS)
eta <- TRUTH$intercept + TRUTH$sexMale * (sex == "Male") +
  TRUTH$deprivation * dep_area[area] + u_area[area] + u_age[age_band] + u_eth[ethnic_group]
y <- rbinom(N_ROWS, 1, plogis(eta))
rows <- data.frame(id = seq_len(N_ROWS), y = y, sex = sex,
                   deprivation = unname(dep_area[area]), area = area,
                   age_band = age_band, ethnic_group = ethnic_group,
                   stringsAsFactors = FALSE)

# (b) the same data aggregated to cells (area x age_band x ethnic_group x sex;
# deprivation is constant within an area). Only cells with rows.
cells <- aggregate(cbind(successes = y, n = 1) ~ area + age_band + ethnic_group + sex +
                     deprivation, data = rows, FUN = sum)
cells <- cells[order(cells$area, cells$age_band, cells$ethnic_group, cells$sex), ]
cells <- cells[, c("area", "age_band", "ethnic_group", "sex", "deprivation", "successes", "n")]
stopifnot(sum(cells$n) == N_ROWS, sum(cells$successes) == sum(rows$y))

# (c) newdata for predict(): seen levels, a small ethnic group, and an area
# ("A99") unseen in fitting (allow.new.levels = TRUE gives it effect 0).
newdata <- data.frame(
  area = c("A01", "A17", "A42", "A60", "A99", "A99"),
  age_band = c("18-24", "45-54", "85+", "65-74", "35-44", "85+"),
  ethnic_group = c("E01", "E05", "E12", "E10", "E01", "E11"),
  sex = c("Female", "Male", "Female", "Male", "Male", "Female"),
  deprivation = c(unname(dep_area[c("A01", "A17", "A42", "A60")]), 0.5, -1.25),
  stringsAsFactors = FALSE)

# (d) singular case: 1,500 rows, 30 areas, 8 age bands, 10 ethnic groups whose
# true SD is 0; glmer's estimate of that SD is exactly 0 (boundary fit).
set.seed(20240703)
N_SING <- 1500
SING_AREA_LEVELS <- sprintf("A%02d", 1:30)
SING_ETH_LEVELS <- sprintf("E%02d", 1:10)
TRUTH_SING <- list(intercept = -1, sexMale = 0.3, deprivation = 0.4,
                   sd_area = 0.5, sd_age_band = 0.5, sd_ethnic_group = 0)
s_area <- sample(SING_AREA_LEVELS, N_SING, replace = TRUE)
s_age <- sample(AGE_LEVELS, N_SING, replace = TRUE)
s_eth <- sample(SING_ETH_LEVELS, N_SING, replace = TRUE)
s_sex <- sample(SEX_LEVELS, N_SING, replace = TRUE)
s_dep <- setNames(round(as.numeric(scale(rnorm(30))), 6), SING_AREA_LEVELS)
s_ua <- setNames(rnorm(30, 0, TRUTH_SING$sd_area), SING_AREA_LEVELS)
s_ug <- setNames(rnorm(8, 0, TRUTH_SING$sd_age_band), AGE_LEVELS)
s_eta <- TRUTH_SING$intercept + TRUTH_SING$sexMale * (s_sex == "Male") +
  TRUTH_SING$deprivation * s_dep[s_area] + s_ua[s_area] + s_ug[s_age]
s_y <- rbinom(N_SING, 1, plogis(s_eta))
singular <- data.frame(id = seq_len(N_SING), y = s_y, sex = s_sex,
                       deprivation = unname(s_dep[s_area]), area = s_area,
                       age_band = s_age, ethnic_group = s_eth,
                       stringsAsFactors = FALSE)

write_input <- function(df, name) {
  path <- file.path(data_dir, paste0("glmm_", name, ".csv"))
  write.csv(df, path, row.names = FALSE, quote = TRUE)
  read.csv(path, stringsAsFactors = FALSE)
}
as_factors <- function(d, area_levels, eth_levels) {
  d$sex <- factor(d$sex, levels = SEX_LEVELS)
  d$area <- factor(d$area, levels = area_levels)
  d$age_band <- factor(d$age_band, levels = AGE_LEVELS)
  d$ethnic_group <- factor(d$ethnic_group, levels = eth_levels)
  stopifnot(!anyNA(d$sex), !anyNA(d$area), !anyNA(d$age_band), !anyNA(d$ethnic_group))
  d
}
rows <- as_factors(write_input(rows, "rows"), AREA_LEVELS, ETH_LEVELS)
cells <- as_factors(write_input(cells, "cells"), AREA_LEVELS, ETH_LEVELS)
singular <- as_factors(write_input(singular, "singular"), SING_AREA_LEVELS, SING_ETH_LEVELS)
newdata <- write_input(newdata, "newdata")
newdata$sex <- factor(newdata$sex, levels = SEX_LEVELS)
newdata$age_band <- factor(newdata$age_band, levels = AGE_LEVELS)
stopifnot(all(table(rows$ethnic_group)[c("E10", "E11", "E12")] < 15))

# ---------------------------------------------------------------------------
# Fitting and tidying
# ---------------------------------------------------------------------------
fit_glmer <- function(formula, data, control = CONTROL) {
  msgs <- character(0)
  warns <- character(0)
  fit <- withCallingHandlers(
    glmer(formula, data = data, family = binomial, nAGQ = 1, control = control),
    message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") },
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  list(fit = fit, messages = trimws(msgs), warnings = trimws(warns))
}

tidy_fit <- function(res) {
  fit <- res$fit
  beta <- fixef(fit)
  se <- sqrt(diag(as.matrix(vcov(fit))))
  # lme4 warns when the two covariance estimates differ by > 1e-4; record it
  vcov_rx_warning <- character(0)
  se_rx <- withCallingHandlers(
    sqrt(diag(as.matrix(vcov(fit, use.hessian = FALSE)))),
    warning = function(w) {
      vcov_rx_warning <<- c(vcov_rx_warning, gsub("\\s+", " ", conditionMessage(w)))
      invokeRestart("muffleWarning")
    })
  fixed <- data.frame(term = unname(PY_TERM[names(beta)]), r_term = names(beta),
                      estimate = unname(beta), se = unname(se), se_rx = unname(se_rx),
                      stringsAsFactors = FALSE)
  vc <- as.data.frame(VarCorr(fit))
  vc <- vc[match(FACTORS, vc$grp), ]
  sds <- setNames(as.list(vc$sdcor), vc$grp)
  re <- ranef(fit, condVar = TRUE)
  modes <- list()
  for (g in FACTORS) {
    pv <- attr(re[[g]], "postVar")
    modes[[g]] <- data.frame(level = rownames(re[[g]]),
                             mode = re[[g]][, "(Intercept)"],
                             sd = sqrt(pv[1, 1, ]),
                             n = as.integer(table(fit@frame[[g]])[rownames(re[[g]])]),
                             stringsAsFactors = FALSE)
  }
  ll <- logLik(fit)
  conv <- fit@optinfo$conv$lme4$messages
  list(
    fixed_effects = fixed,
    variance_components = sds,
    random_effects = modes,
    loglik = as.numeric(ll),
    df = attr(ll, "df"),
    deviance_laplace = -2 * as.numeric(ll),
    theta = setNames(as.list(unname(getME(fit, "theta"))),
                     sub(".\\(Intercept\\)$", "", names(getME(fit, "theta")))),
    singular = isSingular(fit),
    optimizer_converged = fit@optinfo$conv$opt == 0,
    convergence_messages = as.list(if (is.null(conv)) character(0) else conv),
    fit_messages = as.list(res$messages),
    fit_warnings = as.list(res$warnings),
    vcov_rx_warning = as.list(vcov_rx_warning),
    n_obs = nobs(fit)
  )
}

# Largest relative change in fixed effects / SEs / SDs, and absolute change in
# modes and loglik, between the reference fit and the tight refit.
stability <- function(a, b) {
  rel <- function(x, y) max(abs(x - y) / pmax(abs(y), 1e-300))
  positive <- unlist(b$variance_components) > 0
  list(
    fixed_effects_rel = rel(a$fixed_effects$estimate, b$fixed_effects$estimate),
    se_rel = rel(a$fixed_effects$se, b$fixed_effects$se),
    se_rx_rel = rel(a$fixed_effects$se_rx, b$fixed_effects$se_rx),
    sd_rel = rel(unlist(a$variance_components)[positive], unlist(b$variance_components)[positive]),
    sd_abs = max(abs(unlist(a$variance_components) - unlist(b$variance_components))),
    modes_abs = max(sapply(FACTORS, function(g)
      max(abs(a$random_effects[[g]]$mode - b$random_effects[[g]]$mode)))),
    conditional_sd_abs = max(sapply(FACTORS, function(g)
      max(abs(a$random_effects[[g]]$sd - b$random_effects[[g]]$sd)))),
    loglik_abs = abs(a$loglik - b$loglik))
}
with_tight <- function(out, formula, data) {
  tight <- tidy_fit(fit_glmer(formula, data, CONTROL_TIGHT))
  out$stability <- stability(out, tight)
  out$tight <- c(list(control = CONTROL_TIGHT_TEXT), tight)
  out
}

data_summary <- function(d, weight = NULL) {
  w <- if (is.null(weight)) rep(1, nrow(d)) else d[[weight]]
  lapply(setNames(FACTORS, FACTORS), function(g) {
    tab <- tapply(w, d[[g]], sum)
    list(levels = nlevels(d[[g]]), min_rows = min(tab), max_rows = max(tab))
  })
}

# (a) rows
r_rows <- fit_glmer(FORMULA_ROWS, rows)
out_rows <- tidy_fit(r_rows)
out_rows <- with_tight(out_rows, FORMULA_ROWS, rows)
pred <- predict(r_rows$fit, newdata = newdata, type = "response", allow.new.levels = TRUE)
pred_link <- predict(r_rows$fit, newdata = newdata, type = "link", allow.new.levels = TRUE)
out_rows$predict <- list(
  newdata = "data/glmm_newdata.csv",
  call = "predict(fit, newdata = newdata, type = \"response\", allow.new.levels = TRUE)",
  unseen = list(area = list("A99")),
  probability = as.list(unname(pred)),
  link = as.list(unname(pred_link)))

# (b) cells
r_cells <- fit_glmer(FORMULA_CELLS, cells)
out_cells <- tidy_fit(r_cells)
out_cells <- with_tight(out_cells, FORMULA_CELLS, cells)
# glmer's binomial logLik on cbind(successes, failures) includes
# sum(log(choose(n, successes))); the row data's Bernoulli logLik does not.
lchoose_sum <- sum(lchoose(cells$n, cells$successes))
out_cells$log_binomial_coefficients <- lchoose_sum
out_cells$loglik_without_binomial_coefficients <- out_cells$loglik - lchoose_sum
out_cells$differences_from_rows <- list(
  fixed_effects_rel = max(abs(out_cells$fixed_effects$estimate - out_rows$fixed_effects$estimate) /
                            abs(out_rows$fixed_effects$estimate)),
  sd_rel = max(abs(unlist(out_cells$variance_components) - unlist(out_rows$variance_components)) /
                 unlist(out_rows$variance_components)),
  modes_abs = max(sapply(FACTORS, function(g)
    max(abs(out_cells$random_effects[[g]]$mode - out_rows$random_effects[[g]]$mode)))),
  loglik_without_binomial_coefficients_minus_rows =
    out_cells$loglik_without_binomial_coefficients - out_rows$loglik)

# (d) singular
r_sing <- fit_glmer(FORMULA_ROWS, singular)
out_sing <- tidy_fit(r_sing)
out_sing <- with_tight(out_sing, FORMULA_ROWS, singular)
stopifnot(out_sing$singular, out_sing$variance_components$ethnic_group == 0)
stopifnot(!out_rows$singular, !out_cells$singular)

case <- function(data, formula, py, truth, out, d, weight = NULL) {
  c(list(data = data,
         call = paste0("glmer(", formula, ", data = d, family = binomial, nAGQ = 1, control = ",
                       CONTROL_TEXT, ")"),
         python = py,
         truth = truth,
         data_summary = data_summary(d, weight)),
    out)
}
result <- list(
  r_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  matrix_version = as.character(packageVersion("Matrix")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  notes = paste(
    "se: sqrt(diag(vcov(fit))) (lme4's default use.hessian = TRUE: inverse of the finite-difference Hessian of the Laplace deviance in (theta, beta), beta block);",
    "se_rx: sqrt(diag(vcov(fit, use.hessian = FALSE))) (from RX, i.e. conditional on theta).",
    "variance_components: as.data.frame(VarCorr(fit))$sdcor; theta = SD here (binomial, single intercepts).",
    "random_effects: ranef(fit, condVar = TRUE); sd = sqrt of the postVar attribute; n = rows (or, for cells, cells) per level.",
    "loglik: logLik(fit) (Laplace). For the cells case it includes sum(lchoose(n, successes)) = log_binomial_coefficients.",
    "tight: the same model refitted with tolPwrss = 1e-13 (PIRLS converged) and bobyqa rhoend = 1e-12; its se (default vcov) is the accurate one:",
    "at lme4's default tolPwrss = 1e-7 the Laplace deviance is computed from a PIRLS stopped early, and the finite-difference Hessian behind vcov(fit) inherits that error (up to ~0.4% in se).",
    "stability: differences between the default fit and the tight one."),
  cases = list(
    rows = case("data/glmm_rows.csv", deparse1(FORMULA_ROWS),
                list(formula = PY_FORMULA_ROWS, trials = NULL), TRUTH, out_rows, rows),
    cells = case("data/glmm_cells.csv", deparse1(FORMULA_CELLS),
                 list(formula = PY_FORMULA_CELLS, trials = "n"), TRUTH, out_cells, cells,
                 weight = "n"),
    singular = case("data/glmm_singular.csv", deparse1(FORMULA_ROWS),
                    list(formula = PY_FORMULA_ROWS, trials = NULL), TRUTH_SING, out_sing, singular)
  )
)

# ---------------------------------------------------------------------------
# JSON writer with full double precision. jsonlite caps numbers at 15
# significant digits, which does not round-trip every double; "%.17g" does.
# Strings go through jsonlite for escaping.
# ---------------------------------------------------------------------------
json_number <- function(v) {
  if (is.na(v)) return("null")
  if (!is.finite(v)) stop("non-finite number in results: ", v)
  if (v == round(v) && abs(v) < 1e15) return(sprintf("%.0f", v))
  sprintf("%.17g", v)
}
json_scalar <- function(v) {
  if (is.null(v)) return("null")
  if (is.factor(v)) v <- as.character(v)
  if (is.logical(v)) return(if (is.na(v)) "null" else if (v) "true" else "false")
  if (is.numeric(v)) return(json_number(v))
  as.character(jsonlite::toJSON(as.character(v), auto_unbox = TRUE))
}
to_json <- function(x, indent = 0) {
  pad <- strrep("  ", indent + 1)
  close <- strrep("  ", indent)
  if (is.data.frame(x)) {
    rows <- lapply(seq_len(nrow(x)), function(i) as.list(x[i, , drop = FALSE]))
    return(to_json(rows, indent))
  }
  if (is.list(x)) {
    if (length(x) == 0) return(if (is.null(names(x))) "[]" else "{}")
    items <- vapply(x, to_json, character(1), indent = indent + 1)
    if (is.null(names(x))) {
      return(paste0("[\n", paste0(pad, items, collapse = ",\n"), "\n", close, "]"))
    }
    keys <- vapply(names(x), json_scalar, character(1))
    return(paste0("{\n", paste0(pad, keys, ": ", items, collapse = ",\n"), "\n", close, "}"))
  }
  if (is.null(x)) return("null")
  if (length(x) == 1) return(json_scalar(x))
  paste0("[", paste(vapply(as.list(x), json_scalar, character(1)), collapse = ", "), "]")
}

writeLines(to_json(result), file.path(script_dir, "glmm.json"))
cat("wrote", file.path(script_dir, "glmm.json"), "\n")
