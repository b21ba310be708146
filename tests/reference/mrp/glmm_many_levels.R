# Reference values for a binomial GLMM with a many-level random intercept, from lme4.
#
# Run from anywhere:   Rscript tests/reference/mrp/glmm_many_levels.R
# Writes data/glmm_many_levels.csv (generated here with a fixed seed, then read
# back so R fits exactly the values the CSV holds) and glmm_many_levels.json
# beside this script. Every number in the JSON is printed by lme4.
#
# 6,000 respondents in 600 neighbourhoods ("msoa", 1 to ~40 rows each) nested
# in 40 areas, 8 age bands, sex. 600 levels put unmetneed on its sparse
# (Schur-complement) path; tests/mrp/test_many_levels.py compares with this.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

script_dir <- local({
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
})
data_dir <- file.path(script_dir, "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

AGE_LEVELS <- c("18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+")
SEX_LEVELS <- c("Female", "Male")
FACTORS <- c("msoa", "area", "age_band")
FORMULA <- y ~ sex + (1 | msoa) + (1 | area) + (1 | age_band)
PY_FORMULA <- "y ~ sex + (1|msoa) + (1|area) + (1|age_band)"
PY_TERM <- c("(Intercept)" = "Intercept", "sexMale" = "sex[T.Male]")
CONTROL <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
CONTROL_TEXT <- 'glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))'
# PIRLS converged (see README.md, "Why tight"): its vcov(fit) is the accurate one.
CONTROL_TIGHT <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-13,
                              optCtrl = list(maxfun = 1e6, rhoend = 1e-12))
CONTROL_TIGHT_TEXT <- paste0('glmerControl(optimizer = "bobyqa", tolPwrss = 1e-13, ',
                             'optCtrl = list(maxfun = 1e6, rhoend = 1e-12))')

set.seed(20261204)
N_ROWS <- 6000
N_MSOA <- 600
N_AREA <- 40
TRUTH <- list(intercept = -1.5, sexMale = 0.3, sd_msoa = 0.35, sd_area = 0.3, sd_age_band = 0.5)
MSOA_LEVELS <- sprintf("M%03d", seq_len(N_MSOA))
AREA_LEVELS <- sprintf("A%02d", seq_len(N_AREA))
area_of <- AREA_LEVELS[sort(sample(seq_len(N_AREA), N_MSOA, replace = TRUE))]
names(area_of) <- MSOA_LEVELS
msoa_weight <- rgamma(N_MSOA, 1.5, 1)            # very unequal sample sizes
msoa <- sample(MSOA_LEVELS, N_ROWS, replace = TRUE, prob = msoa_weight)
age_band <- sample(AGE_LEVELS, N_ROWS, replace = TRUE,
                   prob = c(0.11, 0.16, 0.16, 0.16, 0.15, 0.13, 0.09, 0.04))
sex <- sample(SEX_LEVELS, N_ROWS, replace = TRUE)
u_msoa <- setNames(rnorm(N_MSOA, 0, TRUTH$sd_msoa), MSOA_LEVELS)
u_area <- setNames(rnorm(N_AREA, 0, TRUTH$sd_area), AREA_LEVELS)
u_age <- setNames(rnorm(8, 0, TRUTH$sd_age_band), AGE_LEVELS)
eta <- TRUTH$intercept + TRUTH$sexMale * (sex == "Male") + u_msoa[msoa] +
  u_area[area_of[msoa]] + u_age[age_band]
y <- rbinom(N_ROWS, 1, plogis(eta))
rows <- data.frame(id = seq_len(N_ROWS), y = y, sex = sex, msoa = msoa,
                   area = unname(area_of[msoa]), age_band = age_band, stringsAsFactors = FALSE)
path <- file.path(data_dir, "glmm_many_levels.csv")
write.csv(rows, path, row.names = FALSE, quote = TRUE)
d <- read.csv(path, stringsAsFactors = FALSE)
d$sex <- factor(d$sex, levels = SEX_LEVELS)
d$age_band <- factor(d$age_band, levels = AGE_LEVELS)
d$msoa <- factor(d$msoa)
d$area <- factor(d$area)

tidy <- function(fit, seconds) {
  beta <- fixef(fit)
  vc <- as.data.frame(VarCorr(fit))
  vc <- vc[match(FACTORS, vc$grp), ]
  re <- ranef(fit, condVar = TRUE)
  modes <- lapply(setNames(FACTORS, FACTORS), function(g) {
    list(level = rownames(re[[g]]), mode = unname(re[[g]][, "(Intercept)"]),
         sd = unname(sqrt(attr(re[[g]], "postVar")[1, 1, ])))
  })
  list(
    fixed_effects = list(term = unname(PY_TERM[names(beta)]), estimate = unname(beta),
                         se = unname(sqrt(diag(as.matrix(vcov(fit))))),
                         se_rx = unname(sqrt(diag(as.matrix(vcov(fit, use.hessian = FALSE)))))),
    variance_components = setNames(as.list(vc$sdcor), vc$grp),
    random_effects = modes,
    loglik = as.numeric(logLik(fit)),
    singular = isSingular(fit),
    optimizer_converged = fit@optinfo$conv$opt == 0,
    convergence_messages = as.list(fit@optinfo$conv$lme4$messages),
    seconds = seconds)
}
t0 <- proc.time()[["elapsed"]]
fit <- glmer(FORMULA, data = d, family = binomial, nAGQ = 1, control = CONTROL)
t1 <- proc.time()[["elapsed"]]
tight <- glmer(FORMULA, data = d, family = binomial, nAGQ = 1, control = CONTROL_TIGHT)
t2 <- proc.time()[["elapsed"]]
out <- list(
  r_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  matrix_version = as.character(packageVersion("Matrix")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  data = "data/glmm_many_levels.csv",
  call = paste0("glmer(", deparse1(FORMULA), ", data = d, family = binomial, nAGQ = 1, control = ",
                CONTROL_TEXT, ")"),
  python = list(formula = PY_FORMULA),
  truth = TRUTH,
  levels = lapply(setNames(FACTORS, FACTORS), function(g) nlevels(d[[g]])),
  default = tidy(fit, t1 - t0),
  tight = c(list(control = CONTROL_TIGHT_TEXT), tidy(tight, t2 - t1)),
  notes = paste(
    "default: glmer at lme4's default tolerances; tight: PIRLS converged (tolPwrss = 1e-13) and",
    "bobyqa rhoend = 1e-12, whose se (the default vcov, a finite-difference Hessian) is accurate.",
    "se_rx: vcov(fit, use.hessian = FALSE). random_effects: ranef(fit, condVar = TRUE), sd =",
    "sqrt(postVar). Numbers are written with 15 significant digits (jsonlite digits = NA).")
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(script_dir, "glmm_many_levels.json"))
cat("wrote glmm_many_levels.json:", t1 - t0, "s default fit,", t2 - t1, "s tight fit\n")
