# Reference values for the area-level Fay-Herriot model, from metafor.
#
# Run from anywhere:   Rscript tests/reference/sae/fay_herriot.R
# Writes the input datasets data/fh_*.csv (generated here with fixed seeds,
# rounded to 6 decimals and read back, so R fits exactly the values the CSVs
# hold) and the expected results fay_herriot.json beside this script.
#
# sigma2, beta, SE(beta), the EBLUPs and blup()'s standard errors are printed
# by metafor::rma / blup (Viechtbauer 2010). The Prasad-Rao / Datta-Lahiri MSE
# has no metafor function, so it is computed here by hand from metafor's
# estimates, term by term (g1, g2, g3 and the ML bias term), with the formulas
# of Datta & Lahiri (2000) and Rao & Molina (2015, chapter 6):
#   g1 = sigma2 psi / (sigma2 + psi)
#   g2 = (1 - gamma)^2 x' (X' V^-1 X)^-1 x,      gamma = sigma2 / (sigma2 + psi)
#   g3 = psi^2 / (sigma2 + psi)^3 * 2 / sum((sigma2 + psi)^-2)
#   REML: mse = g1 + g2 + 2 g3
#   ML:   mse = g1 + g2 + 2 g3 - b_ML (1 - gamma)^2,
#         b_ML = -tr((X'V^-1X)^-1 X'V^-2X) / sum((sigma2 + psi)^-2)

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

script_dir <- local({
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
})
data_dir <- file.path(script_dir, "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

# Fisher scoring run to convergence: metafor's default threshold (1e-5 on the
# change in tau2) would leave sigma2 off by more than the tests' 1e-6.
CONTROL <- list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5)
CONTROL_TEXT <- "control = list(threshold = 1e-13, maxiter = 10000, stepadj = 0.5)"

# R's coefficient names -> formulaic's
py_term <- function(x) {
  x <- sub("^intrcpt$", "Intercept", x)
  x <- sub("^region(.+)$", "region[T.\\1]", x)
  x
}

write_back <- function(df, name) {
  path <- file.path(data_dir, name)
  write.csv(df, path, row.names = FALSE, quote = TRUE)
  read.csv(path, stringsAsFactors = FALSE)
}

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

# (a) main: 40 areas, two covariates, sampling variances from 0.05 to 2.4
# (sample sizes from 12 to 600), true sigma2 = 0.5.
set.seed(20241204)
m <- 40
x1 <- round(rnorm(m, 0, 1), 6)
x2 <- round(runif(m, 0, 10), 6)
n_resp <- round(exp(runif(m, log(12), log(600))))
psi <- round(30 / n_resp, 6)
theta <- 1 + 0.8 * x1 - 0.15 * x2 + rnorm(m, 0, sqrt(0.5))
y <- round(theta + rnorm(m, 0, sqrt(psi)), 6)
main <- data.frame(area_code = sprintf("E%08d", 6000000 + seq_len(m)),
                   y = y, v = psi, x1 = x1, x2 = x2, n = n_resp,
                   stringsAsFactors = FALSE)
main <- write_back(main, "fh_main.csv")

# (b) zero: 30 areas whose sampling variances dwarf the between-area spread;
# the first seed from 20241300 on at which REML and ML both put sigma2 at 0.
make_zero <- function(seed) {
  set.seed(seed)
  m <- 30
  x1 <- round(rnorm(m), 6)
  x2 <- round(runif(m, 0, 10), 6)
  psi <- round(runif(m, 1, 4), 6)
  y <- round(2 + 0.3 * x1 + 0.1 * x2 + rnorm(m, 0, sqrt(psi)), 6)
  data.frame(area_code = sprintf("Z%03d", seq_len(m)), y = y, v = psi,
             x1 = x1, x2 = x2, stringsAsFactors = FALSE)
}
zero_seed <- 20241300
repeat {
  cand <- make_zero(zero_seed)
  r1 <- rma(cand$y, cand$v, mods = ~ x1 + x2, data = cand, method = "REML", control = CONTROL)
  r2 <- rma(cand$y, cand$v, mods = ~ x1 + x2, data = cand, method = "ML", control = CONTROL)
  if (r1$tau2 == 0 && r2$tau2 == 0) break
  zero_seed <- zero_seed + 1
}
zero <- write_back(cand, "fh_zero.csv")

# (c) factor: 60 areas, a numeric covariate and a three-level region
# (treatment contrasts, first level the reference, as formulaic).
set.seed(20241205)
m <- 60
region <- sample(c("North", "Midlands", "South"), m, replace = TRUE)
x1 <- round(rnorm(m), 6)
psi <- round(runif(m, 0.1, 1.5), 6)
eff <- c(North = 0.4, Midlands = 0, South = -0.5)[region]
y <- round(3 + 0.6 * x1 + eff + rnorm(m, 0, 0.7) + rnorm(m, 0, sqrt(psi)), 6)
fac <- data.frame(area_code = sprintf("F%03d", seq_len(m)), y = y, v = psi,
                  x1 = x1, region = region, stringsAsFactors = FALSE)
fac <- write_back(fac, "fh_factor.csv")

# ---------------------------------------------------------------------------
# Fits
# ---------------------------------------------------------------------------

dl_mse <- function(fit, X, psi) {
  s2 <- fit$tau2
  V <- s2 + psi
  A_inv <- solve(crossprod(X, X / V))
  gam <- s2 / V
  g1 <- gam * psi
  g2 <- (1 - gam)^2 * rowSums((X %*% A_inv) * X)
  vbar <- 2 / sum(1 / V^2)
  g3 <- psi^2 / V^3 * vbar
  b_ml <- -sum(diag(A_inv %*% crossprod(X, X / V^2))) / sum(1 / V^2)
  list(g1 = g1, g2 = g2, g3 = g3, b_ml = b_ml,
       mse_reml = g1 + g2 + 2 * g3,
       mse_ml = g1 + g2 + 2 * g3 - b_ml * (1 - gam)^2)
}

fit_case <- function(df, mods, method) {
  df$region <- if (!is.null(df$region)) factor(df$region, levels = sort(unique(df$region))) else NULL
  fit <- rma(yi = df$y, vi = df$v, mods = mods, data = df, method = method, control = CONTROL)
  X <- model.matrix(mods, data = df)
  b <- blup(fit)
  mse <- dl_mse(fit, X, df$v)
  list(
    method = method,
    sigma2 = fit$tau2,
    sigma2_se = fit$se.tau2,
    loglik = as.numeric(logLik(fit)),
    terms = py_term(rownames(fit$beta)),
    beta = as.numeric(fit$beta),
    se_beta = as.numeric(fit$se),
    vcov_beta = unname(fit$vb),
    eblup = as.numeric(b$pred),
    blup_se = as.numeric(b$se),
    shrinkage = fit$tau2 / (fit$tau2 + df$v),
    synthetic = as.numeric(X %*% fit$beta),
    g1 = mse$g1, g2 = mse$g2, g3 = mse$g3, b_ml = mse$b_ml,
    mse = if (method == "REML") mse$mse_reml else mse$mse_ml
  )
}

cases <- list(
  main = list(file = "data/fh_main.csv", formula = "y ~ x1 + x2",
              fits = lapply(c("REML", "ML"), function(me) fit_case(main, ~ x1 + x2, me))),
  zero = list(file = "data/fh_zero.csv", formula = "y ~ x1 + x2", seed = zero_seed,
              fits = lapply(c("REML", "ML"), function(me) fit_case(zero, ~ x1 + x2, me))),
  factor = list(file = "data/fh_factor.csv", formula = "y ~ x1 + region",
                fits = lapply(c("REML", "ML"), function(me) fit_case(fac, ~ x1 + region, me)))
)
for (name in names(cases)) names(cases[[name]]$fits) <- c("REML", "ML")

out <- list(
  description = paste(
    "metafor::rma(yi = y, vi = v, mods = ~ covariates, method = REML | ML) with",
    CONTROL_TEXT, "; blup(); Datta-Lahiri MSE by hand (see the script header).",
    "loglik is metafor's logLik() (REML: restricted log-likelihood with",
    "REMLf = TRUE, i.e. including +1/2 log|X'X|)."
  ),
  versions = list(
    R = R.version.string,
    metafor = as.character(packageVersion("metafor")),
    jsonlite = as.character(packageVersion("jsonlite"))
  ),
  cases = cases
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(script_dir, "fay_herriot.json"))
cat("wrote", file.path(script_dir, "fay_herriot.json"), "; zero seed", zero_seed, "\n")
