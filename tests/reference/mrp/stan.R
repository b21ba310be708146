# Posterior reference for the GLMM of glmm.R, from rstanarm::stan_glmer (MCMC).
#
# Run from anywhere, after glmm.R (it reads data/glmm_rows.csv):
#   Rscript tests/reference/mrp/stan.R
# Writes stan.json beside this script. Takes several minutes on 2 cores.
#
# The tests use these numbers loosely: draws from unmetneed integrate over the
# variance parameters with a different (approximate) method and prior, so they
# are compared to the MCMC posterior within wide bands, not equal to it.

suppressPackageStartupMessages({
  library(rstanarm)
})

script_dir <- local({
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
})

AGE_LEVELS <- c("18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+")
SEX_LEVELS <- c("Female", "Male")
FACTORS <- c("area", "age_band", "ethnic_group")
PY_TERM <- c("(Intercept)" = "Intercept", "sexMale" = "sex[T.Male]",
             "deprivation" = "deprivation")
PROBS <- c(0.05, 0.25, 0.5, 0.75, 0.95)
SEED <- 20240702
CHAINS <- 2
ITER <- 2000

rows <- read.csv(file.path(script_dir, "data", "glmm_rows.csv"), stringsAsFactors = FALSE)
rows$sex <- factor(rows$sex, levels = SEX_LEVELS)
rows$area <- factor(rows$area, levels = sprintf("A%02d", 1:60))
rows$age_band <- factor(rows$age_band, levels = AGE_LEVELS)
rows$ethnic_group <- factor(rows$ethnic_group, levels = sprintf("E%02d", 1:12))
stopifnot(!anyNA(rows))

FORMULA <- y ~ sex + deprivation + (1 | area) + (1 | age_band) + (1 | ethnic_group)
CALL <- paste0("stan_glmer(", deparse1(FORMULA), ", data = d, family = binomial(),",
               " chains = ", CHAINS, ", iter = ", ITER, ", seed = ", SEED, ", cores = 2)")

warns <- character(0)
elapsed <- system.time(
  fit <- withCallingHandlers(
    stan_glmer(FORMULA, data = rows, family = binomial(), chains = CHAINS, iter = ITER,
               seed = SEED, cores = 2, refresh = 0),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
)[["elapsed"]]

draws <- as.matrix(fit)
summ <- summary(fit)   # Rhat and n_eff per parameter

describe <- function(x, rstan_name) {
  q <- quantile(x, PROBS, names = FALSE, type = 7)
  list(q05 = q[1], q25 = q[2], q50 = q[3], q75 = q[4], q95 = q[5],
       mean = mean(x), sd = sd(x),
       rhat = unname(summ[rstan_name, "Rhat"]),
       n_eff = unname(summ[rstan_name, "n_eff"]))
}

# Fixed effects
fixed <- list()
for (r_term in names(PY_TERM)) {
  fixed[[PY_TERM[[r_term]]]] <- c(list(r_term = r_term), describe(draws[, r_term], r_term))
}

# Random-effect SDs: sqrt of the Sigma[<factor>:(Intercept),(Intercept)] draws.
# Rhat / n_eff are those of the variance parameter (monotone transform).
sds <- list()
for (g in FACTORS) {
  nm <- sprintf("Sigma[%s:(Intercept),(Intercept)]", g)
  sds[[g]] <- c(list(rstan_name = nm), describe(sqrt(draws[, nm]), nm))
}

# Random effects per level: posterior mean and SD (b[(Intercept) <factor>:<level>])
re <- list()
for (g in FACTORS) {
  lv <- levels(rows[[g]])
  nms <- sprintf("b[(Intercept) %s:%s]", g, lv)
  re[[g]] <- data.frame(level = lv,
                        mean = unname(colMeans(draws[, nms])),
                        sd = unname(apply(draws[, nms], 2, sd)),
                        q05 = unname(apply(draws[, nms], 2, quantile, 0.05, type = 7)),
                        q95 = unname(apply(draws[, nms], 2, quantile, 0.95, type = 7)),
                        stringsAsFactors = FALSE)
}

# Sampler diagnostics
sp <- rstan::get_sampler_params(fit$stanfit, inc_warmup = FALSE)
divergent <- sum(sapply(sp, function(x) sum(x[, "divergent__"])))
max_treedepth_hits <- sum(sapply(sp, function(x) sum(x[, "treedepth__"] >= 15)))

# Priors, as rstanarm reports them (after autoscaling)
ps <- prior_summary(fit)
tidy_prior <- function(p) {
  if (is.null(p)) return(NULL)
  keep <- p[!vapply(p, is.null, logical(1))]
  lapply(keep, function(v) if (is.numeric(v) && length(v) > 1) as.list(v) else v)
}
priors <- list(
  prior = tidy_prior(ps$prior),
  prior_intercept = tidy_prior(ps$prior_intercept),
  prior_covariance = tidy_prior(ps$prior_covariance),
  printed = as.list(capture.output(print(ps)))
)

result <- list(
  r_version = R.version.string,
  rstanarm_version = as.character(packageVersion("rstanarm")),
  rstan_version = as.character(packageVersion("rstan")),
  stan_version = rstan::stan_version(),
  lme4_version = as.character(packageVersion("lme4")),
  data = "data/glmm_rows.csv",
  call = CALL,
  python = list(formula = "y ~ sex + deprivation + (1|area) + (1|age_band) + (1|ethnic_group)"),
  chains = CHAINS, iter = ITER, warmup = ITER %/% 2, seed = SEED,
  posterior_draws = nrow(draws),
  elapsed_seconds = elapsed,
  divergent_transitions = divergent,
  max_treedepth_hits = max_treedepth_hits,
  sampler_warnings = as.list(trimws(warns)),
  notes = paste(
    "Quantiles: quantile(x, c(0.05, 0.25, 0.5, 0.75, 0.95), type = 7) of the post-warmup draws of both chains.",
    "sd[factor]: sqrt of Sigma[factor:(Intercept),(Intercept)] draws.",
    "Default rstanarm priors (see priors); coefficients' scales are autoscaled (adjusted_scale)."),
  priors = priors,
  fixed_effects = fixed,
  sd = sds,
  random_effects = re
)

# JSON writer with full double precision (as in glmm.R).
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

writeLines(to_json(result), file.path(script_dir, "stan.json"))
cat("wrote", file.path(script_dir, "stan.json"), "\n")
