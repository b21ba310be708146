# Posterior reference for a GLMM with four crossed factors and tiny groups, from
# rstanarm::stan_glmer (MCMC), for tests/mrp/test_draws_tiny_groups.py.
#
# Data: data/tiny_groups_rows.csv, written once by make_tiny_groups.py (25 areas,
# 8 age bands, 19 ethnic groups of which E16 has 3 respondents and E17-E19 none,
# 3 disability levels, 1,500 respondents).
#   Rscript tests/reference/mrp/stan_tiny.R      # ~10 min on 2 cores; writes stan_tiny.json
#
# What is stored: posterior mean, SD and 5/50/95% quantiles of each SD, each fixed
# effect, each observed ethnic group's intercept, and the prevalence of reference
# cells (posterior_epred; levels without respondents draw a new effect from
# N(0, Sigma), allow.new.levels) -- every ethnic group and every age band.

suppressPackageStartupMessages({
  library(rstanarm)
  library(jsonlite)
})

script_dir <- local({
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
})

SEED <- 20261204
CHAINS <- 4
ITER <- 2000
AGES <- c("18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+")
DIS <- c("Disabled: limited a lot", "Disabled: limited a little", "Not disabled")
GROUPS <- sprintf("E%02d", 1:19)
FACTORS <- c("area", "age_band", "ethnic_group", "disability")

rows <- read.csv(file.path(script_dir, "data", "tiny_groups_rows.csv"), stringsAsFactors = FALSE)
rows$sex <- factor(rows$sex, levels = c("Female", "Male"))
FORMULA <- y ~ sex + (1 | area) + (1 | age_band) + (1 | ethnic_group) + (1 | disability)

elapsed <- system.time(
  fit <- stan_glmer(FORMULA, data = rows, family = binomial(), chains = CHAINS, iter = ITER,
                    seed = SEED, cores = 2, refresh = 0, adapt_delta = 0.99)
)[["elapsed"]]
draws <- as.matrix(fit)
summ <- summary(fit)

describe <- function(x) {
  q <- quantile(x, c(0.05, 0.5, 0.95), names = FALSE, type = 7)
  list(mean = mean(x), sd = sd(x), q05 = q[1], q50 = q[2], q95 = q[3])
}

sds <- list()
for (g in FACTORS) {
  nm <- sprintf("Sigma[%s:(Intercept),(Intercept)]", g)
  sds[[g]] <- c(describe(sqrt(draws[, nm])), list(rhat = unname(summ[nm, "Rhat"])))
}
fixed <- list(Intercept = describe(draws[, "(Intercept)"]),
              `sex[T.Male]` = describe(draws[, "sexMale"]))
eth <- list()
for (lv in sort(unique(rows$ethnic_group))) {
  eth[[lv]] <- describe(draws[, sprintf("b[(Intercept) ethnic_group:%s]", lv)])
}

# Reference cells: area A01, Female, 65-74, Not disabled, every ethnic group; and E01 at every age.
by_group <- data.frame(area = "A01", sex = factor("Female", levels = c("Female", "Male")),
                       age_band = "65-74", ethnic_group = GROUPS, disability = "Not disabled")
by_age <- data.frame(area = "A01", sex = factor("Female", levels = c("Female", "Male")),
                     age_band = AGES, ethnic_group = "E01", disability = "Not disabled")
set.seed(SEED)
p_group <- posterior_epred(fit, newdata = by_group, allow.new.levels = TRUE)
p_age <- posterior_epred(fit, newdata = by_age, allow.new.levels = TRUE)
cells <- list()
for (j in seq_along(GROUPS)) cells[[paste0("ethnic_group=", GROUPS[j])]] <- describe(p_group[, j])
for (j in seq_along(AGES)) cells[[paste0("age_band=", AGES[j])]] <- describe(p_age[, j])

sp <- rstan::get_sampler_params(fit$stanfit, inc_warmup = FALSE)
result <- list(
  r_version = R.version.string,
  rstanarm_version = as.character(packageVersion("rstanarm")),
  rstan_version = as.character(packageVersion("rstan")),
  call = paste0("stan_glmer(", deparse1(FORMULA), ", family = binomial(), chains = ", CHAINS,
                ", iter = ", ITER, ", seed = ", SEED, ", adapt_delta = 0.99)"),
  python = list(formula = "y ~ sex + (1|area) + (1|age_band) + (1|ethnic_group) + (1|disability)"),
  reference_cell = list(area = "A01", sex = "Female", age_band = "65-74",
                        ethnic_group = "E01", disability = "Not disabled"),
  posterior_draws = nrow(draws),
  elapsed_seconds = elapsed,
  divergent_transitions = sum(sapply(sp, function(x) sum(x[, "divergent__"]))),
  max_rhat = max(summ[, "Rhat"], na.rm = TRUE),
  sd = sds, fixed_effects = fixed, ethnic_group = eth, cells = cells
)
writeLines(toJSON(result, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(script_dir, "stan_tiny.json"))
cat("wrote", file.path(script_dir, "stan_tiny.json"), "\n")
