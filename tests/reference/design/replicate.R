# Reference values for replicate weights: R survey's as.svrepdesign (JK1, JKn,
# BRR, Fay, subbootstrap) and replicate-weight estimators, on the designs in
# data/replicate_*.csv (written by replicate_data.R). Output: replicate.json
# beside this script, every double at 17 significant digits (round-trips).
# Run from anywhere: Rscript replicate_data.R && Rscript replicate.R
# (both deterministic: running twice gives byte-identical files).
#
# Produced with R 4.2.2 Patched (2022-11-10 r83330), survey 4.1.1, jsonlite
# 1.8.4 (string escaping only), options at R's defaults
# (survey.drop.replicates = TRUE, survey.replicates.mse = FALSE).
#
# Cases (`cases` in the JSON; `designs` gives each svydesign call's columns):
#   jk1, jk1_fpc, jk1_mse        JK1 on 15 unstratified clusters (fpc 60)
#   jkn, jkn_nofpc, jkn_mse      JKn, 6 string strata with 2-5 PSUs, fpc per stratum
#   jkn_census                   JKn with stratum S6 a census (no replicates for it)
#   brr, brr_mse, fay, fay_mse   12 numeric strata x 2 PSUs, nest = TRUE; Fay rho 0.5
#   lonely_*                     JKn with strata B and D holding one PSU, under
#                                options(survey.lonely.psu = adjust/average/
#                                certainty/remove)
#   subbootstrap                 R's Rao-Wu bootstrap (50 replicates, set.seed),
#                                for from_replicate_weights only
#   jk1_sparse_domain            JK1 where domain "rare" is in one cluster: its
#                                replicate mean is NaN when that cluster is
#                                dropped, and svyby discards that replicate for
#                                "rare" only (with a warning)
# Each case: type, scale, rscales, degf, pweights, the n x R replication
# factors (weights(rd, "replication")), and estimates with SEs of svymean,
# svytotal, svyratio(~y, ~x), svyby by domain (mean, total, ratio) and
# svymean / svytotal of factor4. `hadamard` holds the order and a checksum of
# survey:::hadamard(n) for n = 1..400 and the full matrix for n = 12.
suppressMessages(library(survey))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
datadir <- file.path(here, "data")

source(file.path(here, "..", "json17.R"))  # json_writer() and sc()
json <- json_writer(",")

# ---- designs ----------------------------------------------------------------
read <- function(name) read.csv(file.path(datadir, name), stringsAsFactors = FALSE)
brr_df <- read("replicate_brr.csv")
jk1_df <- read("replicate_jk1.csv")
jkn_df <- read("replicate_jkn.csv")
lonely_df <- read("replicate_lonely.csv")

designs <- list(
  brr = list(file = "replicate_brr.csv", weights = "w", strata = "stratum", clusters = "psu",
             fpc = NULL, nest = TRUE),
  jk1 = list(file = "replicate_jk1.csv", weights = "w", strata = NULL, clusters = "psu",
             fpc = NULL, nest = FALSE),
  jk1_fpc = list(file = "replicate_jk1.csv", weights = "w", strata = NULL, clusters = "psu",
                 fpc = "fpc", nest = FALSE),
  jkn = list(file = "replicate_jkn.csv", weights = "w", strata = "stratum", clusters = "psu",
             fpc = "fpc", nest = FALSE),
  jkn_nofpc = list(file = "replicate_jkn.csv", weights = "w", strata = "stratum", clusters = "psu",
                   fpc = NULL, nest = FALSE),
  jkn_census = list(file = "replicate_jkn.csv", weights = "w", strata = "stratum", clusters = "psu",
                    fpc = "fpc_census", nest = FALSE),
  lonely = list(file = "replicate_lonely.csv", weights = "w", strata = "stratum", clusters = "psu",
                fpc = NULL, nest = FALSE),
  sparse = list(file = "replicate_sparse.csv", weights = "w", strata = NULL, clusters = "psu",
                fpc = NULL, nest = FALSE)
)

make_design <- function(spec) {
  df <- read(spec$file)
  f <- function(v) if (is.null(v)) NULL else as.formula(paste("~", v))
  ids <- if (is.null(spec$clusters)) ~1 else f(spec$clusters)
  svydesign(ids = ids, strata = f(spec$strata), weights = f(spec$weights),
            fpc = f(spec$fpc), nest = spec$nest, data = df)
}

# ---- estimates ----------------------------------------------------------------
estimates <- function(rd) {
  est <- function(s) list(estimate = unname(coef(s)), se = unname(SE(s)))
  by_est <- function(b, name) {
    list(domain = as.character(b$domain), estimate = unname(coef(b)), se = unname(SE(b)))
  }
  m4 <- svymean(~factor4, rd)
  t4 <- svytotal(~factor4, rd)
  r <- svyratio(~y, ~x, rd)
  list(
    mean = est(svymean(~y, rd)),
    total = est(svytotal(~y, rd)),
    ratio = list(estimate = unname(as.vector(coef(r))), se = unname(as.vector(SE(r)))),
    mean_by_domain = by_est(svyby(~y, ~domain, rd, svymean)),
    total_by_domain = by_est(svyby(~y, ~domain, rd, svytotal)),
    ratio_by_domain = by_est(svyby(~y, by = ~domain, denominator = ~x, design = rd,
                                   FUN = svyratio)),
    proportion_factor4 = list(category = sub("^factor4", "", names(coef(m4))),
                              estimate = unname(coef(m4)), se = unname(SE(m4))),
    total_factor4 = list(category = sub("^factor4", "", names(coef(t4))),
                         estimate = unname(coef(t4)), se = unname(SE(t4)))
  )
}

run_case <- function(name, design, type, method, rho = NULL, mse = FALSE,
                     lonely = "fail", replicates = NULL) {
  old <- options(survey.lonely.psu = lonely)
  on.exit(options(old))
  d <- make_design(designs[[design]])
  rd <- if (type == "Fay") {
    as.svrepdesign(d, type = "Fay", fay.rho = rho, mse = mse)
  } else if (type == "subbootstrap") {
    set.seed(20240612)
    as.svrepdesign(d, type = "subbootstrap", replicates = replicates, mse = mse)
  } else {
    as.svrepdesign(d, type = type, mse = mse)
  }
  c(list(
    name = sc(name), design = sc(design), type = sc(rd$type), method = sc(method),
    rho = if (is.null(rho)) NULL else sc(rho), mse = sc(mse), lonely_psu = sc(lonely),
    scale = sc(as.numeric(rd$scale)), rscales = as.numeric(rd$rscales),
    n_replicates = sc(ncol(weights(rd, "replication"))), degf = sc(as.integer(degf(rd))),
    pweights = as.numeric(rd$pweights),
    factors = unname(weights(rd, "replication"))
  ), estimates(rd))
}

cases <- list(
  run_case("jk1", "jk1", "JK1", "jk1"),
  run_case("jk1_fpc", "jk1_fpc", "JK1", "jk1"),
  run_case("jk1_mse", "jk1", "JK1", "jk1", mse = TRUE),
  run_case("jkn", "jkn", "JKn", "jkn"),
  run_case("jkn_nofpc", "jkn_nofpc", "JKn", "jkn"),
  run_case("jkn_mse", "jkn", "JKn", "jkn", mse = TRUE),
  run_case("jkn_census", "jkn_census", "JKn", "jkn"),
  run_case("brr", "brr", "BRR", "brr"),
  run_case("brr_mse", "brr", "BRR", "brr", mse = TRUE),
  run_case("fay", "brr", "Fay", "fay", rho = 0.5),
  run_case("fay_mse", "brr", "Fay", "fay", rho = 0.5, mse = TRUE),
  run_case("lonely_adjust", "lonely", "JKn", "jkn", lonely = "adjust"),
  run_case("lonely_average", "lonely", "JKn", "jkn", lonely = "average"),
  run_case("lonely_certainty", "lonely", "JKn", "jkn", lonely = "certainty"),
  run_case("lonely_remove", "lonely", "JKn", "jkn", lonely = "remove"),
  run_case("subbootstrap", "brr", "subbootstrap", "bootstrap", replicates = 50L),
  # R warns "1 replicates gave NA results and were discarded" for the domain
  # "rare" (mean and ratio by domain) and drops that replicate for it alone.
  suppressWarnings(run_case("jk1_sparse_domain", "sparse", "JK1", "jk1"))
)

# R's survey:::hadamard(n): order and a checksum of every matrix, n = 1..400.
hn <- 1:400
hmats <- lapply(hn, survey:::hadamard)
checksum <- vapply(hmats, function(H) {
  i <- row(H); j <- col(H)
  sum(H * ((31 * i + 17 * j) %% 1009))
}, numeric(1))

out <- list(
  r_version = sc(R.version.string),
  survey_version = sc(as.character(packageVersion("survey"))),
  generated_by = sc("tests/reference/design/replicate.R"),
  options = list(survey.drop.replicates = sc(getOption("survey.drop.replicates"))),
  designs = lapply(designs, function(s) lapply(s, function(v) if (is.null(v)) NULL else sc(v))),
  hadamard = list(
    n = hn, order = vapply(hmats, nrow, integer(1)), checksum = checksum,
    checksum_formula = sc("sum(H[i, j] * ((31 * i + 17 * j) %% 1009)), 1-based i, j"),
    h12 = survey:::hadamard(12)
  ),
  cases = cases
)
writeLines(json(out), file.path(here, "replicate.json"))
