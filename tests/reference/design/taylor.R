# Reference values for Taylor-linearisation estimates, from R's `survey`.
#
# Run from anywhere:   Rscript tests/reference/design/taylor.R
# Writes the input datasets data/taylor_*.csv (generated here with a fixed
# seed, then read back so R computes from exactly the values the CSVs hold)
# and the expected results taylor.json beside this script.
#
# Every number in taylor.json is printed by R `survey`; nothing is computed
# on the Python side. See README.md for the versions used.

suppressPackageStartupMessages({
  library(survey)
})

# Locate this script's directory so the outputs land beside it whatever the cwd.
script_dir <- local({
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
})
data_dir <- file.path(script_dir, "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

CAT4_LEVELS <- c("none", "paid", "self", "unpaid")   # sort the same in every locale
DOM_LEVELS <- c("D1", "D2", "D3", "D4", "D5")
SEX_LEVELS <- c("Female", "Male")

# ---------------------------------------------------------------------------
# Data generation (fixed seed). Values are rounded so the CSV text is exact.
# ---------------------------------------------------------------------------
set.seed(20240611)

draw_rows <- function(n, dom_levels, shift = 0) {
  # y positive (so CVs are meaningful), x positive (ratio denominator).
  dom <- sample(dom_levels, n, replace = TRUE)
  sex <- sample(SEX_LEVELS, n, replace = TRUE)
  dom_effect <- match(dom, DOM_LEVELS)
  x <- round(runif(n, 1, 5) + 0.3 * dom_effect, 3)
  y <- round(20 + shift + 4 * x + 2 * dom_effect + (sex == "Male") * 3 +
               rgamma(n, shape = 2, scale = 3), 3)
  p <- c(0.35, 0.2, 0.15, 0.3)
  cat4 <- sample(CAT4_LEVELS, n, replace = TRUE, prob = p)
  data.frame(y = y, x = x, cat4 = cat4, dom = dom, sex = sex,
             stringsAsFactors = FALSE)
}

# (a) simple weighted: no strata, no clusters.
simple <- draw_rows(400, DOM_LEVELS)
simple$w <- round(runif(400, 40, 160), 2)
simple <- cbind(id = seq_len(nrow(simple)), simple)

# (b) stratified, unclustered, fpc as population counts and as fractions.
# Domains absent from some strata: D5 not in S1, D4 not in S3.
strat_spec <- list(
  list(h = "S1", n = 100, N = 1000, doms = c("D1", "D2", "D3", "D4")),
  list(h = "S2", n = 160, N = 3200, doms = DOM_LEVELS),
  list(h = "S3", n = 200, N = 4000, doms = c("D1", "D2", "D3", "D5")),
  list(h = "S4", n = 140, N = 1750, doms = DOM_LEVELS)
)
strat <- do.call(rbind, lapply(seq_along(strat_spec), function(k) {
  s <- strat_spec[[k]]
  r <- draw_rows(s$n, s$doms, shift = 3 * k)
  r$stratum <- s$h
  # weights vary within a stratum (nonresponse-like adjustment) around N/n
  r$w <- round(s$N / s$n * runif(s$n, 0.8, 1.2), 3)
  r$fpc_n <- s$N
  r$fpc_frac <- s$n / s$N
  r
}))
strat <- cbind(id = seq_len(nrow(strat)), strat)

# (c), (d) stratified clustered, PSU ids 1..m_h repeating across strata.
clus_spec <- list(
  list(h = "S1", m = 6, M = 30, doms = c("D1", "D2", "D3", "D4")),
  list(h = "S2", m = 8, M = 25, doms = DOM_LEVELS),
  list(h = "S3", m = 5, M = 40, doms = c("D1", "D2", "D3", "D5")),
  list(h = "S4", m = 7, M = 21, doms = DOM_LEVELS),
  list(h = "S5", m = 4, M = 12, doms = c("D2", "D3", "D4", "D5"))
)
make_clustered <- function(spec, rows_range) {
  out <- do.call(rbind, lapply(seq_along(spec), function(k) {
    s <- spec[[k]]
    do.call(rbind, lapply(seq_len(s$m), function(j) {
      nj <- sample(rows_range[1]:rows_range[2], 1)
      r <- draw_rows(nj, s$doms, shift = 2 * k + rnorm(1, 0, 2))
      r$stratum <- s$h
      r$psu <- j
      # PSU weight (M/m times a cluster-size factor) with within-PSU variation
      r$w <- round(s$M / s$m * 40 * runif(1, 0.7, 1.3) * runif(nj, 0.9, 1.1), 3)
      r$fpc_psu <- s$M
      r
    }))
  }))
  cbind(id = seq_len(nrow(out)), out)
}
clus <- make_clustered(clus_spec, c(20, 50))

# (e) stratified clustered with one stratum (S3) holding a single PSU.
# D1..D3 have rows in S3; D4 and D5 have none there.
lonely_spec <- list(
  list(h = "S1", m = 5, M = 20, doms = DOM_LEVELS),
  list(h = "S2", m = 6, M = 24, doms = c("D1", "D2", "D4", "D5")),
  list(h = "S3", m = 1, M = 3, doms = c("D1", "D2", "D3")),
  list(h = "S4", m = 4, M = 16, doms = DOM_LEVELS),
  list(h = "S5", m = 5, M = 20, doms = c("D1", "D3", "D4", "D5"))
)
lonely <- make_clustered(lonely_spec, c(15, 40))
# M above only sets the weights; this design is analysed without fpc
lonely$fpc_psu <- NULL

# (f) unstratified clustered: 30 PSUs with unique ids.
onestage <- do.call(rbind, lapply(seq_len(30), function(j) {
  nj <- sample(10:40, 1)
  r <- draw_rows(nj, DOM_LEVELS, shift = rnorm(1, 0, 3))
  r$psu <- 100 + j
  r$w <- round(60 * runif(1, 0.7, 1.3) * runif(nj, 0.9, 1.1), 3)
  r
}))
onestage <- cbind(id = seq_len(nrow(onestage)), onestage)

write_input <- function(df, name) {
  path <- file.path(data_dir, paste0("taylor_", name, ".csv"))
  write.csv(df, path, row.names = FALSE, quote = TRUE)
  read.csv(path, stringsAsFactors = FALSE)
}
datasets <- list(
  simple = write_input(simple, "simple"),
  strat = write_input(strat, "strat"),
  clus = write_input(clus, "clus"),
  lonely = write_input(lonely, "lonely"),
  onestage = write_input(onestage, "onestage")
)
for (nm in names(datasets)) {
  # fixed category order (sorted; the same in every locale)
  datasets[[nm]]$cat4 <- factor(datasets[[nm]]$cat4, levels = CAT4_LEVELS)
  datasets[[nm]]$dom <- factor(datasets[[nm]]$dom, levels = DOM_LEVELS)
  datasets[[nm]]$sex <- factor(datasets[[nm]]$sex, levels = SEX_LEVELS)
  stopifnot(!any(is.na(datasets[[nm]]$cat4)), !any(is.na(datasets[[nm]]$dom)))
}

# ---------------------------------------------------------------------------
# Cases: design call (R) and the equivalent Python keyword arguments.
# ---------------------------------------------------------------------------
cases <- list(
  simple = list(
    data = "simple", lonely_psu = "fail",
    call = "svydesign(ids = ~1, weights = ~w, data = d)",
    python = list(weights = "w", strata = NULL, clusters = NULL, fpc = NULL,
                  nest = FALSE)),
  strat_fpc_count = list(
    data = "strat", lonely_psu = "fail",
    call = "svydesign(ids = ~1, strata = ~stratum, weights = ~w, fpc = ~fpc_n, data = d)",
    python = list(weights = "w", strata = "stratum", clusters = NULL,
                  fpc = "fpc_n", nest = FALSE)),
  strat_fpc_fraction = list(
    data = "strat", lonely_psu = "fail",
    call = "svydesign(ids = ~1, strata = ~stratum, weights = ~w, fpc = ~fpc_frac, data = d)",
    python = list(weights = "w", strata = "stratum", clusters = NULL,
                  fpc = "fpc_frac", nest = FALSE)),
  strat_clus = list(
    data = "clus", lonely_psu = "fail",
    call = "svydesign(ids = ~psu, strata = ~stratum, weights = ~w, nest = TRUE, data = d)",
    python = list(weights = "w", strata = "stratum", clusters = "psu",
                  fpc = NULL, nest = TRUE)),
  strat_clus_fpc = list(
    data = "clus", lonely_psu = "fail",
    call = "svydesign(ids = ~psu, strata = ~stratum, weights = ~w, fpc = ~fpc_psu, nest = TRUE, data = d)",
    python = list(weights = "w", strata = "stratum", clusters = "psu",
                  fpc = "fpc_psu", nest = TRUE)),
  clus_unstratified = list(
    data = "onestage", lonely_psu = "fail",
    call = "svydesign(ids = ~psu, weights = ~w, data = d)",
    python = list(weights = "w", strata = NULL, clusters = "psu", fpc = NULL,
                  nest = FALSE))
)
lonely_call <- "svydesign(ids = ~psu, strata = ~stratum, weights = ~w, nest = TRUE, data = d)"
lonely_python <- list(weights = "w", strata = "stratum", clusters = "psu",
                      fpc = NULL, nest = TRUE)
for (policy in c("adjust", "certainty", "average", "remove")) {
  cases[[paste0("lonely_", policy)]] <- list(
    data = "lonely", lonely_psu = policy, call = lonely_call,
    python = lonely_python)
}

# ---------------------------------------------------------------------------
# Tidy extractors: one data.frame per statistic, columns
# [by...], [category], estimate, se, ci_lower, ci_upper, cv, [deff], n
# ---------------------------------------------------------------------------
ci_cols <- function(est, df, level) {
  ci <- confint(est, level = level, df = df)
  list(lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}

tidy_stat <- function(est, df, n, category = NULL, with_deff = FALSE) {
  ci95 <- ci_cols(est, df, 0.95)
  ci90 <- ci_cols(est, df, 0.90)
  out <- data.frame(
    estimate = unname(as.vector(coef(est))),
    se = unname(as.vector(SE(est))),
    ci_lower = ci95$lower, ci_upper = ci95$upper,
    ci90_lower = ci90$lower, ci90_upper = ci90$upper,
    cv = unname(as.vector(cv(est, warn = FALSE)))
  )
  if (with_deff) out$deff <- unname(as.vector(deff(est)))
  out$n <- n
  if (!is.null(category)) out <- cbind(data.frame(category = category), out)
  out
}

# svyby result -> long data.frame, rows ordered by the by-variables (as svyby
# orders them) and, within a row, by category.
tidy_by <- function(obj, byvars, df, n, categories = NULL, with_deff = FALSE) {
  aa <- attr(obj, "svyby")
  nd <- nrow(obj)
  k <- aa$nstats
  est <- matrix(as.vector(as.matrix(obj[, max(aa$margins) + seq_len(k)])), nrow = nd)
  se <- matrix(as.vector(as.matrix(SE(obj))), nrow = nd)
  c95 <- confint(obj, level = 0.95, df = df)
  c90 <- confint(obj, level = 0.90, df = df)
  # confint rows follow coef(): column-major over (domain, statistic)
  stopifnot(identical(as.vector(est), unname(as.vector(coef(obj)))))
  cvm <- matrix(as.vector(as.matrix(cv(obj, warn = FALSE))), nrow = nd)
  if (with_deff) dm <- matrix(as.vector(as.matrix(deff(obj))), nrow = nd)
  rows <- list()
  for (i in seq_len(nd)) {
    for (j in seq_len(k)) {
      r <- lapply(obj[i, byvars, drop = FALSE], as.character)
      if (!is.null(categories)) r$category <- categories[j]
      idx <- (j - 1) * nd + i
      r$estimate <- est[i, j]
      r$se <- se[i, j]
      r$ci_lower <- unname(c95[idx, 1]); r$ci_upper <- unname(c95[idx, 2])
      r$ci90_lower <- unname(c90[idx, 1]); r$ci90_upper <- unname(c90[idx, 2])
      r$cv <- cvm[i, j]
      if (with_deff) r$deff <- dm[i, j]
      r$n <- n[i]
      rows[[length(rows) + 1]] <- as.data.frame(r, stringsAsFactors = FALSE)
    }
  }
  do.call(rbind, rows)
}

by_counts <- function(byformula, des) {
  cnt <- svyby(~y, byformula, des, unwtd.count)
  as.integer(cnt$counts)
}

# ---------------------------------------------------------------------------
# JSON writer with full double precision. jsonlite caps numbers at 15
# significant digits (digits = NA or I(17) alike), which does not round-trip
# every double; "%.17g" does. Strings go through jsonlite for escaping.
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

# ---------------------------------------------------------------------------
# Compute every statistic for every case.
# ---------------------------------------------------------------------------
run_case <- function(case) {
  d <- datasets[[case$data]]
  options(survey.lonely.psu = case$lonely_psu)
  des <- eval(parse(text = case$call))
  df <- degf(des)
  n_all <- nrow(d)
  res <- list()

  res$mean <- tidy_stat(svymean(~y, des, deff = TRUE), df, n_all, with_deff = TRUE)
  res$total <- tidy_stat(svytotal(~y, des, deff = TRUE), df, n_all, with_deff = TRUE)
  res$ratio <- tidy_stat(svyratio(~y, ~x, des), df, n_all)
  res$proportion <- tidy_stat(svymean(~cat4, des, deff = TRUE), df, n_all,
                              category = CAT4_LEVELS, with_deff = TRUE)
  res$total_categorical <- tidy_stat(svytotal(~cat4, des, deff = TRUE), df, n_all,
                                     category = CAT4_LEVELS, with_deff = TRUE)

  n_dom <- by_counts(~dom, des)
  res$mean_by_dom <- tidy_by(svyby(~y, ~dom, des, svymean, deff = TRUE),
                             "dom", df, n_dom, with_deff = TRUE)
  res$total_by_dom <- tidy_by(svyby(~y, ~dom, des, svytotal, deff = TRUE),
                              "dom", df, n_dom, with_deff = TRUE)
  res$ratio_by_dom <- tidy_by(svyby(~y, ~dom, des, svyratio, denominator = ~x),
                              "dom", df, n_dom)
  res$proportion_by_dom <- tidy_by(svyby(~cat4, ~dom, des, svymean, deff = TRUE),
                                   "dom", df, n_dom, categories = CAT4_LEVELS,
                                   with_deff = TRUE)
  n_domsex <- by_counts(~dom + sex, des)
  res$mean_by_dom_sex <- tidy_by(svyby(~y, ~dom + sex, des, svymean, deff = TRUE),
                                 c("dom", "sex"), df, n_domsex, with_deff = TRUE)
  res$total_by_dom_sex <- tidy_by(svyby(~y, ~dom + sex, des, svytotal, deff = TRUE),
                                  c("dom", "sex"), df, n_domsex, with_deff = TRUE)

  list(
    data = paste0("data/taylor_", case$data, ".csv"),
    design_call = case$call,
    lonely_psu = case$lonely_psu,
    python = case$python,
    n = n_all,
    degf = df,
    results = res
  )
}

out_cases <- lapply(cases, run_case)

# (e) "fail": R builds the design but every variance errors on the lonely stratum.
options(survey.lonely.psu = "fail")
d <- datasets$lonely
des_fail <- eval(parse(text = lonely_call))
fail_msg <- tryCatch({ svymean(~y, des_fail); NA_character_ },
                     error = function(e) conditionMessage(e))
stopifnot(!is.na(fail_msg))
out_fail <- list(
  data = "data/taylor_lonely.csv",
  design_call = lonely_call,
  lonely_psu = "fail",
  python = lonely_python,
  lonely_strata = "S3",
  r_error = fail_msg
)
options(survey.lonely.psu = "fail")

result <- list(
  generator = "tests/reference/design/taylor.R",
  r_version = R.version.string,
  survey_version = as.character(packageVersion("survey")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  options = list(survey.adjust.domain.lonely = getOption("survey.adjust.domain.lonely"),
                 survey.ultimate.cluster = getOption("survey.ultimate.cluster")),
  notes = paste(
    "Intervals: confint(est, df = degf(design), level = 0.95 / 0.90) (t intervals).",
    "Domain results: svyby(..., FUN, deff = TRUE); ratio by domain: svyby(~y, ~dom, design, svyratio, denominator = ~x).",
    "n: unweighted count of rows behind the estimate (the domain's rows for by=, all rows otherwise; for proportions the domain's rows).",
    "deff: survey's default deff=TRUE (without-replacement SRS variance, N = sum of weights in the (sub)design)."),
  cases = out_cases,
  fail_case = out_fail
)
writeLines(to_json(result), file.path(script_dir, "taylor.json"))
cat("wrote", file.path(script_dir, "taylor.json"), "\n")
