# Reference values for the weighting layer (rake, calibrate, postStratify, and
# raking of replicate designs), from R's `survey`.
#
# Run from anywhere:   Rscript tests/reference/weighting/weighting.R
# Writes the input data (generated here with a fixed seed, then read back so R
# computes from exactly the values the CSVs hold):
#   data/weighting_sample.csv         the survey sample (1,500 rows)
#   data/weighting_population.csv     the made-up population, region x sex x age
#   data/weighting_bootstrap_raked.csv  R's subbootstrap replicate weights after
#                                     raking (analysis weights), for import
# and the expected results weighting.json beside this script. Every number in
# the JSON is printed by R (sprintf("%.17g"): it round-trips); nothing is
# computed on the Python side. See README.md for versions and the cases.

suppressPackageStartupMessages({
  library(survey)
})
options(warn = 2)  # any R warning (e.g. "Raking did not converge") stops the script

script_dir <- local({
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
})
data_dir <- file.path(script_dir, "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

source(file.path(script_dir, "..", "json17.R"))  # json_writer() and sc()
json <- json_writer(",")

# Fixed category orders (sort the same in every locale).
SEX_LEVELS <- c("Female", "Male")
AGE_LEVELS <- c("16-34", "35-49", "50-64", "65-79", "80+")
REGION_LEVELS <- c("London", "Midlands", "North", "South")
CAT_LEVELS <- c("none", "paid", "self", "unpaid")

# ---------------------------------------------------------------------------
# The made-up population: counts by region x sex x age (every margin below is
# a sum of this one table, so the margins agree exactly).
# ---------------------------------------------------------------------------
set.seed(20240613)
region_size <- c(London = 420000, Midlands = 510000, North = 640000, South = 730000)
age_share <- c(0.30, 0.25, 0.22, 0.16, 0.07)
population <- expand.grid(region = REGION_LEVELS, sex = SEX_LEVELS, age = AGE_LEVELS,
                          stringsAsFactors = FALSE)
population$count <- with(population, round(
  region_size[region] *
    ifelse(sex == "Female", 0.51, 0.49) *
    age_share[match(age, AGE_LEVELS)] *
    # older women outnumber older men; London is younger
    ifelse(sex == "Female" & age %in% c("65-79", "80+"), 1.15, 1) *
    ifelse(region == "London", c(1.25, 1.1, 0.9, 0.75, 0.6)[match(age, AGE_LEVELS)], 1) *
    runif(nrow(population), 0.9, 1.1)))
population <- population[order(population$region, population$sex, population$age), ]
rownames(population) <- NULL
N <- sum(population$count)

# ---------------------------------------------------------------------------
# The sample: 6 strata x 5 PSUs (PSU ids 1..5 repeat across strata: nest),
# 40-60 rows per PSU. Respondents are older and more often female than the
# population, and region depends on the stratum, so raking moves the weights.
# ---------------------------------------------------------------------------
strata <- data.frame(
  stratum = paste0("S", 1:6),
  # region probabilities (London, Midlands, North, South) in each stratum
  p1 = c(0.70, 0.10, 0.05, 0.05, 0.10, 0.15),
  p2 = c(0.10, 0.60, 0.20, 0.10, 0.10, 0.15),
  p3 = c(0.05, 0.20, 0.65, 0.15, 0.10, 0.20),
  p4 = c(0.15, 0.10, 0.10, 0.70, 0.70, 0.50),
  weight = c(1300, 1450, 1700, 1500, 1650, 1350),
  stringsAsFactors = FALSE
)
rows <- list()
for (h in seq_len(nrow(strata))) {
  s <- strata[h, ]
  for (j in 1:5) {
    nj <- sample(40:60, 1)
    region <- sample(REGION_LEVELS, nj, replace = TRUE,
                     prob = c(s$p1, s$p2, s$p3, s$p4))
    sex <- sample(SEX_LEVELS, nj, replace = TRUE, prob = c(0.55, 0.45))
    age <- sample(AGE_LEVELS, nj, replace = TRUE, prob = c(0.21, 0.23, 0.24, 0.20, 0.12))
    age_i <- match(age, AGE_LEVELS)
    psu_effect <- rnorm(1, 0, 3)
    x <- round(exp(rnorm(nj, 3 + 0.1 * age_i, 0.4)), 3)
    y <- round(30 + psu_effect + 0.6 * x + 4 * age_i + 3 * (sex == "Female") +
                 2 * match(region, REGION_LEVELS) + rgamma(nj, shape = 2, scale = 4), 3)
    p_cat <- cbind(0.55 - 0.08 * age_i, 0.1 + 0.03 * age_i, 0.1 + 0.02 * age_i,
                   0.25 + 0.03 * age_i)
    cat <- vapply(seq_len(nj), function(i) sample(CAT_LEVELS, 1, prob = p_cat[i, ]),
                  character(1))
    w <- round(s$weight * runif(1, 0.85, 1.15) * runif(nj, 0.9, 1.1), 3)
    rows[[length(rows) + 1]] <- data.frame(
      stratum = s$stratum, psu = j, psu_id = 10 * h + j, w = w, y = y, x = x, cat = cat,
      sex = sex, age = age, region = region, stringsAsFactors = FALSE)
  }
}
sample_df <- do.call(rbind, rows)
sample_df <- cbind(id = seq_len(nrow(sample_df)), sample_df)

write.csv(population, file.path(data_dir, "weighting_population.csv"), row.names = FALSE)
write.csv(sample_df, file.path(data_dir, "weighting_sample.csv"), row.names = FALSE)
d <- read.csv(file.path(data_dir, "weighting_sample.csv"), stringsAsFactors = FALSE)
population <- read.csv(file.path(data_dir, "weighting_population.csv"),
                       stringsAsFactors = FALSE)
d$sex <- factor(d$sex, levels = SEX_LEVELS)
d$age <- factor(d$age, levels = AGE_LEVELS)
d$region <- factor(d$region, levels = REGION_LEVELS)
d$cat <- factor(d$cat, levels = CAT_LEVELS)
stopifnot(!anyNA(d))

# ---------------------------------------------------------------------------
# Population margins (data frames for rake/postStratify, a vector for calibrate)
# ---------------------------------------------------------------------------
margin_df <- function(vars) {
  a <- aggregate(population$count, by = population[vars], FUN = sum)
  names(a)[ncol(a)] <- "Freq"
  for (v in vars) {
    lev <- switch(v, sex = SEX_LEVELS, age = AGE_LEVELS, region = REGION_LEVELS)
    a[[v]] <- factor(a[[v]], levels = lev)
  }
  a[do.call(order, a[vars]), , drop = FALSE]
}
pop_sex <- margin_df("sex")
pop_age <- margin_df("age")
pop_region <- margin_df("region")
pop_region_sex <- margin_df(c("region", "sex"))
stopifnot(sum(pop_sex$Freq) == N, sum(pop_age$Freq) == N, sum(pop_region$Freq) == N)

# Made-up population total of x: 4% above the design-weighted sample total.
X_TOTAL <- round(1.04 * sum(d$w * d$x))

margin_json <- function(a) {
  vars <- setdiff(names(a), "Freq")
  out <- lapply(vars, function(v) as.character(a[[v]]))
  names(out) <- vars
  c(list(variables = vars), out, list(total = as.numeric(a$Freq)))
}

RAKE_CONTROL <- list(maxit = 200, epsilon = 1e-14)
CAL_EPSILON <- 1e-13
CAL_MAXIT <- 200

rake_margins <- function(design) {
  rake(design, list(~sex, ~age, ~region), list(pop_sex, pop_age, pop_region),
       control = RAKE_CONTROL)
}

# calibrate()'s population vector, named as model.matrix names the columns
calibration_population <- function(formula) {
  mm <- model.matrix(formula, d)
  out <- setNames(numeric(ncol(mm)), colnames(mm))
  for (nm in colnames(mm)) {
    out[[nm]] <- if (nm == "(Intercept)") {
      N
    } else if (nm == "x") {
      X_TOTAL
    } else if (startsWith(nm, "sex")) {
      pop_sex$Freq[pop_sex$sex == sub("^sex", "", nm)]
    } else if (startsWith(nm, "age")) {
      pop_age$Freq[pop_age$age == sub("^age", "", nm)]
    } else if (startsWith(nm, "region")) {
      pop_region$Freq[pop_region$region == sub("^region", "", nm)]
    } else stop("unknown column ", nm)
  }
  out
}

# ---------------------------------------------------------------------------
# Estimates from a (weighted) design: estimate and SE of each statistic.
# ---------------------------------------------------------------------------
estimates <- function(des) {
  m <- svymean(~y, des)
  t <- svytotal(~y, des)
  p <- svymean(~cat, des)
  b <- svyby(~y, ~region, des, svymean)
  list(
    mean = list(estimate = unname(coef(m)), se = as.vector(SE(m))),
    total = list(estimate = unname(coef(t)), se = as.vector(SE(t))),
    proportion = list(category = sub("^cat", "", names(coef(p))),
                      estimate = unname(coef(p)), se = as.vector(SE(p))),
    mean_by_region = list(region = as.character(b$region), estimate = unname(coef(b)),
                          se = as.vector(SE(b)))
  )
}

# Largest relative error of the margins under weights w (0 = met exactly).
margin_error <- function(w) {
  err <- function(vars, a) {
    key <- do.call(paste, c(d[vars], sep = "\r"))
    popkey <- do.call(paste, c(lapply(a[vars], as.character), sep = "\r"))
    achieved <- tapply(w, key, sum)[popkey]
    max(abs(achieved - a$Freq) / a$Freq)
  }
  max(err("sex", pop_sex), err("age", pop_age), err("region", pop_region))
}

taylor_case <- function(des, base, call, python) {
  w <- weights(des)
  c(list(call = sc(call), python = python, degf = sc(as.integer(degf(des))),
         weights = as.numeric(w),
         g_min = sc(min(w / base)), g_max = sc(max(w / base))),
    list(results = estimates(des)))
}

# ---------------------------------------------------------------------------
# Taylor cases (a)-(e) on the stratified clustered design
# ---------------------------------------------------------------------------
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, nest = TRUE, data = d)
w0 <- weights(des)
cases <- list()

# (a) rake to sex, age, region
rk <- rake_margins(des)
stopifnot(margin_error(weights(rk)) < 1e-12)
cases$rake <- taylor_case(
  rk, w0,
  "rake(des, list(~sex, ~age, ~region), list(pop_sex, pop_age, pop_region), control = list(maxit = 200, epsilon = 1e-14))",
  list(function_name = sc("rake"), margins = list("sex", "age", "region")))
cases$rake$margin_max_rel_error <- sc(margin_error(weights(rk)))

# (b) linear calibration to sex + age + numeric x
f_b <- ~sex + age + x
pop_b <- calibration_population(f_b)
cal_b <- calibrate(des, f_b, population = pop_b, epsilon = CAL_EPSILON, maxit = CAL_MAXIT)
cases$calibrate_linear <- taylor_case(
  cal_b, w0,
  "calibrate(des, ~sex + age + x, population = pop, epsilon = 1e-13, maxit = 200)",
  list(function_name = sc("calibrate"), method = sc("linear"), bounds = NULL,
       margins = list("sex", "age", "x")))
cases$calibrate_linear$population_vector <- as.list(pop_b)

# (c) bounded raking (calfun = "raking"), bounds bind for some units
f_c <- ~sex + age + region
pop_c <- calibration_population(f_c)
cal_c <- calibrate(des, f_c, population = pop_c, calfun = "raking", bounds = c(0.5, 2),
                   epsilon = CAL_EPSILON, maxit = CAL_MAXIT)
g_c <- weights(cal_c) / w0
n_bound_c <- sum(abs(g_c - 0.5) < 1e-12 | abs(g_c - 2) < 1e-12)
stopifnot(n_bound_c > 0, margin_error(weights(cal_c)) < 1e-12)
# without bounds the g-weights leave [0.5, 2]: the bounds change the answer
g_free <- weights(calibrate(des, f_c, population = pop_c, calfun = "raking",
                            epsilon = CAL_EPSILON, maxit = CAL_MAXIT)) / w0
stopifnot(min(g_free) < 0.5 || max(g_free) > 2)
cases$calibrate_raking_bounded <- taylor_case(
  cal_c, w0,
  "calibrate(des, ~sex + age + region, population = pop, calfun = \"raking\", bounds = c(0.5, 2), epsilon = 1e-13, maxit = 200)",
  list(function_name = sc("calibrate"), method = sc("raking"), bounds = c(0.5, 2),
       margins = list("sex", "age", "region")))
cases$calibrate_raking_bounded$n_at_bounds <- sc(as.integer(n_bound_c))
cases$calibrate_raking_bounded$unbounded_g_range <- c(min(g_free), max(g_free))
cases$calibrate_raking_bounded$population_vector <- as.list(pop_c)

# (d) logit calibration, bounds (0.4, 2.5)
cal_d <- calibrate(des, f_c, population = pop_c, calfun = "logit", bounds = c(0.4, 2.5),
                   epsilon = CAL_EPSILON, maxit = CAL_MAXIT)
stopifnot(margin_error(weights(cal_d)) < 1e-12)
cases$calibrate_logit <- taylor_case(
  cal_d, w0,
  "calibrate(des, ~sex + age + region, population = pop, calfun = \"logit\", bounds = c(0.4, 2.5), epsilon = 1e-13, maxit = 200)",
  list(function_name = sc("calibrate"), method = sc("logit"), bounds = c(0.4, 2.5),
       margins = list("sex", "age", "region")))
cases$calibrate_logit$population_vector <- as.list(pop_c)

# (e) post-stratification on region x sex
ps <- postStratify(des, ~region + sex, pop_region_sex)
cases$poststratify <- taylor_case(
  ps, w0, "postStratify(des, ~region + sex, pop_region_sex)",
  list(function_name = sc("poststratify"), margins = list(list("region", "sex"))))

# ---------------------------------------------------------------------------
# Replicate designs raked with the same margins: (f) JK1, JKn; (g) bootstrap
# ---------------------------------------------------------------------------
cell_key <- function() {
  paste(as.character(d$sex), as.character(d$age), as.character(d$region), sep = "|")
}

# Per PSU (in R's row order of first appearance) the replicate factors, and per
# raking cell (sex x age x region) the g-factor of each replicate: raked / base
# analysis weight, constant within a cell (checked); null where every row of
# the cell has replicate weight 0.
replicate_case <- function(rd, rk, psu, call, python) {
  base <- weights(rd, "analysis")
  raked <- weights(rk, "analysis")
  factors <- weights(rd, "replication")
  first <- !duplicated(psu)
  key <- cell_key()
  cells <- sort(unique(key), method = "radix")  # C-locale order
  g <- matrix(NA_real_, length(cells), ncol(base))
  for (r in seq_len(ncol(base))) {
    ok <- base[, r] > 0
    ratio <- raked[ok, r] / base[ok, r]
    spread <- tapply(ratio, key[ok], function(v) diff(range(v)) / mean(v))
    stopifnot(max(spread) < 1e-12)
    g[match(names(spread), cells), r] <- tapply(ratio, key[ok], mean)
  }
  rep_error <- max(apply(raked, 2, margin_error))
  parts <- strsplit(cells, "|", fixed = TRUE)
  c(list(call = sc(call), python = python,
         type = sc(rk$type), scale = sc(as.numeric(rk$scale)),
         rscales = as.numeric(rk$rscales), mse = sc(isTRUE(rk$mse)),
         n_replicates = sc(ncol(base)), degf = sc(as.integer(degf(rk))),
         weights = as.numeric(weights(rk, "sampling")),
         replicate_margin_max_rel_error = sc(rep_error),
         psu = as.integer(psu[first]),
         psu_factors = unname(factors[first, , drop = FALSE]),
         cells = list(sex = vapply(parts, `[`, "", 1), age = vapply(parts, `[`, "", 2),
                      region = vapply(parts, `[`, "", 3)),
         cell_g = g),
    list(results = estimates(rk)))
}

des1 <- svydesign(ids = ~psu_id, weights = ~w, data = d)
rd_jk1 <- as.svrepdesign(des1, type = "JK1")
rk_jk1 <- rake_margins(rd_jk1)
cases$rake_jk1 <- replicate_case(
  rd_jk1, rk_jk1, d$psu_id,
  "rake(as.svrepdesign(svydesign(ids = ~psu_id, weights = ~w, data = d), type = \"JK1\"), <margins as rake>)",
  list(design = list(weights = sc("w"), clusters = sc("psu_id")),
       replicate = sc("jk1"), margins = list("sex", "age", "region")))

rd_jkn <- as.svrepdesign(des, type = "JKn")
rk_jkn <- rake_margins(rd_jkn)
cases$rake_jkn <- replicate_case(
  rd_jkn, rk_jkn, d$psu_id,
  "rake(as.svrepdesign(des, type = \"JKn\"), <margins as rake>)",
  list(design = list(weights = sc("w"), strata = sc("stratum"), clusters = sc("psu"),
                     nest = sc(TRUE)),
       replicate = sc("jkn"), margins = list("sex", "age", "region")))

set.seed(20240614)
rd_boot <- as.svrepdesign(des, type = "subbootstrap", replicates = 50)
rk_boot <- rake_margins(rd_boot)
cases$rake_bootstrap <- replicate_case(
  rd_boot, rk_boot, d$psu_id,
  "set.seed(20240614); rake(as.svrepdesign(des, type = \"subbootstrap\", replicates = 50), <margins as rake>)",
  list(design = list(weights = sc("w"), strata = sc("stratum"), clusters = sc("psu"),
                     nest = sc(TRUE)),
       replicate = sc("bootstrap (R's, imported)"), margins = list("sex", "age", "region")))
boot_raked <- weights(rk_boot, "analysis")
boot_out <- data.frame(id = d$id, w = weights(rk_boot, "sampling"))
for (r in seq_len(ncol(boot_raked))) boot_out[[sprintf("rep%02d", r)]] <- boot_raked[, r]
boot_lines <- c(
  paste(names(boot_out), collapse = ","),
  apply(boot_out, 1, function(row) paste(c(sprintf("%d", as.integer(row[1])),
                                          sprintf("%.17g", row[-1])), collapse = ",")))
writeLines(boot_lines, file.path(data_dir, "weighting_bootstrap_raked.csv"))
cases$rake_bootstrap$raked_weights_file <- sc("data/weighting_bootstrap_raked.csv")
# the SEs must not depend on the 17-digit text: recompute from the file as read
boot_back <- read.csv(file.path(data_dir, "weighting_bootstrap_raked.csv"))
rd_back <- svrepdesign(data = d, weights = boot_back$w,
                       repweights = as.matrix(boot_back[, grep("^rep", names(boot_back))]),
                       type = "other", scale = rk_boot$scale, rscales = rk_boot$rscales,
                       combined.weights = TRUE, mse = rk_boot$mse)
cases$rake_bootstrap$imported <- list(
  call = sc("svrepdesign(data = d, weights = w, repweights = rep01..rep50, type = \"other\", scale, rscales, combined.weights = TRUE)"),
  results = estimates(rd_back))

# ---------------------------------------------------------------------------
result <- list(
  generator = sc("tests/reference/weighting/weighting.R"),
  r_version = sc(R.version.string),
  survey_version = sc(as.character(packageVersion("survey"))),
  jsonlite_version = sc(as.character(packageVersion("jsonlite"))),
  options = list(survey.lonely.psu = sc(getOption("survey.lonely.psu")),
                 survey.replicates.mse = sc(getOption("survey.replicates.mse"))),
  data = sc("data/weighting_sample.csv"),
  population_file = sc("data/weighting_population.csv"),
  design_call = sc("svydesign(ids = ~psu, strata = ~stratum, weights = ~w, nest = TRUE, data = d)"),
  population_total = sc(N),
  margins = list(sex = margin_json(pop_sex), age = margin_json(pop_age),
                 region = margin_json(pop_region),
                 region_sex = margin_json(pop_region_sex),
                 x = list(variables = "x", total = sc(X_TOTAL))),
  levels = list(sex = SEX_LEVELS, age = AGE_LEVELS, region = REGION_LEVELS, cat = CAT_LEVELS),
  notes = sc(paste(
    "Statistics: svymean(~y), svytotal(~y), svymean(~cat), svyby(~y, ~region, design, svymean);",
    "estimate = coef(), se = SE(). Taylor cases compute SEs from the calibrated design object",
    "(rake: the 10-sweep backfit of svyrecvar; calibrate/postStratify: the GREG residual).",
    "Replicate cases: rake() on the svyrep.design; cell_g[c][r] = raked / base analysis weight",
    "of replicate r in raking cell c (sex|age|region), psu_factors[p][r] = R's replicate",
    "factor of PSU p (psu ids as in 'psu', order of first appearance).")),
  cases = cases
)
writeLines(json(result), file.path(script_dir, "weighting.json"))
cat("wrote", file.path(script_dir, "weighting.json"), "\n")
