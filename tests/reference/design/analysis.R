# Reference values for the design-based analysis functions (issue 14):
# svymean/svytotal of several variables with vcov, na.rm, svyby(covmat=TRUE),
# svycontrast, subset, svyvar, svytable, svyciprop, svyquantile, svychisq,
# svyglm (+ predict), on a stratified clustered design with fpc and on its JKn
# replicate version (as.svrepdesign(type = "JKn")).
#
# Run from anywhere:   Rscript tests/reference/design/analysis.R
# Input: data/taylor_clus.csv (written by taylor.R). This script adds seeded
# columns (missing values, a binary and a count outcome, a 3-level factor for
# a 3 x 4 table) and writes data/analysis_clus.csv, reads it back, and writes
# analysis.json beside itself. Deterministic: running twice gives identical
# files. Every double is written with 17 significant digits (round-trips).
suppressMessages(library(survey))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
datadir <- file.path(here, "data")

source(file.path(here, "..", "json17.R"))  # json_writer() and sc()
json <- json_writer(",\n")
cols <- function(df) lapply(as.list(df), function(v) if (is.factor(v)) as.character(v) else v)

# ---- data -------------------------------------------------------------------
d0 <- read.csv(file.path(datadir, "taylor_clus.csv"), stringsAsFactors = FALSE)
set.seed(20261204)
n <- nrow(d0)
d0$y_na <- ifelse(runif(n) < 0.06, NA, d0$y)
d0$x_na <- ifelse(runif(n) < 0.06, NA, d0$x)
eta <- -2 + 0.35 * d0$x + 0.3 * (d0$sex == "Male") + 0.2 * match(d0$dom, c("D1", "D2", "D3", "D4", "D5"))
d0$bin <- as.integer(runif(n) < plogis(eta))
d0$bin_na <- ifelse(runif(n) < 0.05, NA, d0$bin)
d0$count <- rpois(n, exp(0.2 + 0.15 * d0$x))
p3 <- cbind(0.5 - 0.05 * match(d0$cat4, c("none", "paid", "self", "unpaid")), 0.3, 0.2)
u <- runif(n)
d0$r3 <- ifelse(u < p3[, 1], "r1", ifelse(u < p3[, 1] + p3[, 2], "r2", "r3"))
d0$r3_na <- ifelse(runif(n) < 0.05, NA, d0$r3)
path <- file.path(datadir, "analysis_clus.csv")
write.csv(d0, path, row.names = FALSE, na = "")
d <- read.csv(path, stringsAsFactors = FALSE)
d$dom <- factor(d$dom, levels = c("D1", "D2", "D3", "D4", "D5"))
d$sex <- factor(d$sex, levels = c("Female", "Male"))
d$cat4 <- factor(d$cat4, levels = c("none", "paid", "self", "unpaid"))
d$r3 <- factor(d$r3, levels = c("r1", "r2", "r3"))
d$r3_na <- factor(d$r3_na, levels = c("r1", "r2", "r3"))

taylor <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, fpc = ~fpc_psu, nest = TRUE, data = d)
jkn <- as.svrepdesign(taylor, type = "JKn")

Q <- c(0.25, 0.5, 0.9)
RULES <- c("math", "school", "shahvaish", paste0("hf", 1:9))

stat_out <- function(est) {
  list(estimate = unname(as.vector(coef(est))), se = unname(as.vector(SE(est))),
       names = names(coef(est)), vcov = unname(as.matrix(vcov(est))))
}
by_out <- function(b) {
  list(estimate = unname(as.vector(coef(b))), se = unname(as.vector(SE(b))),
       names = names(coef(b)), vcov = unname(as.matrix(vcov(b))))
}
quant_out <- function(q) {
  # newsvyquantile: one matrix per variable, rows = quantiles
  m <- q[[1]]
  list(quantile = unname(m[, 1]), ci_lower = unname(m[, 2]), ci_upper = unname(m[, 3]),
       se = unname(m[, 4]))
}
quant_by_out <- function(b) {
  # svyby(..., svyquantile, vartype = c("se", "ci")): columns by, stats, se, ci_l, ci_u
  k <- length(Q)
  m <- as.matrix(b[, -1])
  list(dom = as.character(b$dom), quantile = unname(m[, 1:k]), se = unname(m[, k + 1:k]),
       ci_lower = unname(m[, 2 * k + 1:k]), ci_upper = unname(m[, 3 * k + 1:k]))
}
ciprop_out <- function(p) {
  list(estimate = sc(unname(as.numeric(p))), se = sc(unname(sqrt(as.numeric(attr(p, "var"))))),
       ci = unname(as.numeric(attr(p, "ci"))))
}
chisq_out <- function(t) {
  list(statistic = sc(unname(as.numeric(t$statistic))),
       parameter = if (is.null(t$parameter)) NULL else as.list(t$parameter),
       p_value = sc(unname(as.numeric(t$p.value))))
}
glm_out <- function(g, newdata) {
  s <- summary(g)
  ct <- coef(s)
  ci <- confint(g)
  pl <- predict(g, newdata = newdata, type = "link", se.fit = TRUE)
  pr <- predict(g, newdata = newdata, type = "response", se.fit = TRUE)
  list(terms = rownames(ct), estimate = unname(ct[, 1]), se = unname(ct[, 2]),
       statistic = unname(ct[, 3]), p_value = unname(ct[, 4]),
       ci_lower = unname(ci[, 1]), ci_upper = unname(ci[, 2]),
       df_resid = sc(g$df.residual), vcov = unname(vcov(g)),
       predict_link = unname(as.vector(coef(pl))), predict_link_se = unname(sqrt(as.vector(attr(pl, "var")))),
       predict_response = unname(as.vector(coef(pr))),
       predict_response_se = unname(sqrt(as.vector(attr(pr, "var")))))
}
newdata <- data.frame(x = c(2, 3.5, 5), sex = factor(c("Female", "Male", "Male"), levels = c("Female", "Male")),
                      dom = factor(c("D1", "D3", "D5"), levels = levels(d$dom)))

run <- function(des, replicate) {
  df <- degf(des)
  out <- list(degf = sc(df))
  out$mean_multi <- stat_out(svymean(~y + x, des))
  out$total_multi <- stat_out(svytotal(~y + x, des))
  out$mean_multi_by <- by_out(svyby(~y + x, ~dom, des, svymean, covmat = TRUE))
  out$total_by <- by_out(svyby(~y, ~dom, des, svytotal, covmat = TRUE))
  out$mean_na <- stat_out(svymean(~y_na, des, na.rm = TRUE))
  out$total_na <- stat_out(svytotal(~y_na, des, na.rm = TRUE))
  out$mean_na_multi <- stat_out(svymean(~y_na + x_na, des, na.rm = TRUE))
  # svyby(..., na.rm = TRUE, covmat = TRUE) stops with an error in survey 4.1.1
  # (inflmats[[i]][idxs[[i]], ] <- infs[[i]]): estimates and SEs only.
  b <- svyby(~y_na, ~dom, des, svymean, na.rm = TRUE)
  out$mean_na_by <- list(estimate = unname(as.vector(coef(b))), se = unname(as.vector(SE(b))))
  out$ratio_na <- stat_out(svyratio(~y_na, ~x_na, des, na.rm = TRUE))
  out$prop_na <- stat_out(svymean(~bin_na, des, na.rm = TRUE))
  out$ciprop_na <- list()
  for (m in c("beta", "xlogit", "logit")) {
    out$ciprop_na[[m]] <- ciprop_out(suppressWarnings(svyciprop(~bin_na, des, method = m, df = df, na.rm = TRUE)))
  }
  byd <- svyby(~y, ~dom, des, svymean, covmat = TRUE)
  con <- svycontrast(byd, list(d1_minus_d2 = c(1, -1, 0, 0, 0), average = rep(0.2, 5)))
  out$contrast <- list(estimate = unname(as.vector(coef(con))), se = unname(as.vector(SE(con))),
                       vcov = unname(as.matrix(vcov(con))))
  sub <- subset(des, sex == "Female")
  out$subset_mean <- stat_out(svymean(~y, sub))
  out$subset_degf <- sc(degf(sub))
  out$subset_mean_by <- by_out(svyby(~y, ~dom, sub, svymean, covmat = TRUE))
  # svyvar
  out$var <- list(estimate = sc(as.numeric(coef(svyvar(~y, des)))), se = sc(as.numeric(SE(svyvar(~y, des)))))
  vb <- svyby(~y, ~dom, des, svyvar)
  out$var_by <- list(estimate = unname(as.vector(coef(vb))), se = unname(as.vector(SE(vb))))
  vna <- svyvar(~y_na, des, na.rm = TRUE)
  out$var_na <- list(estimate = sc(as.numeric(coef(vna))), se = sc(as.numeric(SE(vna))))
  # svytable
  tb <- svytable(~r3 + cat4, des)
  tdf <- as.data.frame(tb)
  out$table <- list(r3 = as.character(tdf$r3), cat4 = as.character(tdf$cat4), count = tdf$Freq)
  # svyciprop (df = degf(design) given explicitly, also by domain)
  out$ciprop <- list()
  out$ciprop_by <- list()
  for (m in c("logit", "likelihood", "asin", "beta", "mean", "xlogit")) {
    p <- suppressWarnings(svyciprop(~bin, des, method = m, df = df))
    out$ciprop[[m]] <- ciprop_out(p)
    b <- suppressWarnings(svyby(~bin, ~dom, des, svyciprop, method = m, df = df, vartype = c("se", "ci")))
    out$ciprop_by[[m]] <- list(estimate = unname(b[, 2]), se = unname(b[, 3]),
                               ci_lower = unname(b[, 4]), ci_upper = unname(b[, 5]))
  }
  # svyquantile: every rule with interval "mean"; every interval with "math"
  out$quantile_rules <- list()
  for (r in RULES) {
    out$quantile_rules[[r]] <- quant_out(svyquantile(~y, des, quantiles = Q, qrule = r, ci = TRUE, df = df))
  }
  types <- if (replicate) c("mean", "beta", "xlogit", "asin", "quantile") else c("mean", "beta", "xlogit", "asin", "score")
  out$quantile_intervals <- list()
  out$quantile_by <- list()
  for (it in types) {
    q <- suppressWarnings(svyquantile(~y, des, quantiles = Q, interval.type = it, ci = TRUE, df = df))
    out$quantile_intervals[[it]] <- quant_out(q)
    b <- suppressWarnings(svyby(~y, ~dom, des, svyquantile, quantiles = Q, interval.type = it,
                                ci = TRUE, df = df, vartype = c("se", "ci")))
    out$quantile_by[[it]] <- quant_by_out(b)
  }
  if (replicate) {
    # svyquantile.svyrep.design calls woodruffCI without method = interval.type
    # (survey 4.1.1), so its "beta", "xlogit" and "asin" intervals are the
    # "mean" ones. The intervals as defined: woodruffCI(..., method = ) directly.
    direct <- function(des_d, method) {
      x <- des_d$variables$y
      w <- weights(des_d, "sampling")
      rows <- t(sapply(Q, function(p) {
        qhat <- survey:::qrule_math(x, w, p)
        ci <- survey:::woodruffCI(x, qhat, p, des_d, survey:::qrule_math, 0.05, df, method = method)
        c(qhat, ci, diff(ci) / (2 * qt(0.975, df)))
      }))
      list(quantile = unname(rows[, 1]), ci_lower = unname(rows[, 2]), ci_upper = unname(rows[, 3]),
           se = unname(rows[, 4]))
    }
    out$quantile_intervals_direct <- list()
    out$quantile_by_direct <- list()
    for (it in c("beta", "xlogit", "asin")) {
      out$quantile_intervals_direct[[it]] <- direct(des, it)
      per <- lapply(levels(d$dom), function(l) direct(des[des$variables$dom == l, ], it))
      out$quantile_by_direct[[it]] <- list(
        dom = levels(d$dom),
        quantile = do.call(rbind, lapply(per, `[[`, "quantile")),
        se = do.call(rbind, lapply(per, `[[`, "se")),
        ci_lower = do.call(rbind, lapply(per, `[[`, "ci_lower")),
        ci_upper = do.call(rbind, lapply(per, `[[`, "ci_upper")))
    }
  }
  out$quantile_by_hf7 <- quant_by_out(svyby(~y, ~dom, des, svyquantile, quantiles = Q, qrule = "hf7",
                                            ci = TRUE, df = df, vartype = c("se", "ci")))
  out$quantile_na <- quant_out(svyquantile(~y_na, des, quantiles = Q, na.rm = TRUE, ci = TRUE, df = df))
  # svychisq (lincom falls back to the saddlepoint when CompQuadForm is absent)
  out$chisq <- list()
  for (s in c("F", "Chisq", "Wald", "adjWald", "lincom", "saddlepoint")) {
    out$chisq[[s]] <- chisq_out(suppressWarnings(svychisq(~r3 + cat4, des, statistic = s)))
  }
  # missing values in the row variable: rows out as a domain, N = all rows (R)
  out$chisq_na <- list()
  for (s in c("F", "Chisq", "Wald", "adjWald")) {
    out$chisq_na[[s]] <- chisq_out(suppressWarnings(svychisq(~r3_na + cat4, des, statistic = s)))
  }
  out$table_na <- (function(tdf) list(r3_na = as.character(tdf$r3_na), cat4 = as.character(tdf$cat4),
                                      count = tdf$Freq))(as.data.frame(svytable(~r3_na + cat4, des)))
  # svyglm
  out$glm <- list()
  out$glm$gaussian <- glm_out(svyglm(y ~ x + dom + sex, des), newdata)
  out$glm$binomial <- glm_out(suppressWarnings(svyglm(bin ~ x + dom, des, family = binomial)), newdata)
  out$glm$quasibinomial <- glm_out(svyglm(bin ~ x + dom, des, family = quasibinomial), newdata)
  out$glm$poisson <- glm_out(suppressWarnings(svyglm(count ~ x + sex, des, family = poisson)), newdata)
  out$glm$quasipoisson <- glm_out(svyglm(count ~ x + sex, des, family = quasipoisson), newdata)
  out$glm$gaussian_na <- glm_out(svyglm(y_na ~ x_na + sex, des), data.frame(x_na = c(2, 3.5, 5), sex = newdata$sex))
  out$glm$gaussian_subset <- glm_out(svyglm(y ~ x, subset(des, sex == "Male")), newdata)
  out
}

# Calibrated designs: variances use the calibration residuals (postStratify, rake).
pop_sex <- data.frame(sex = factor(c("Female", "Male"), levels = levels(d$sex)),
                      Freq = c(130000, 118000))
pop_dom <- data.frame(dom = factor(levels(d$dom), levels = levels(d$dom)),
                      Freq = c(52000, 47000, 55000, 50000, 44000))
calibrated <- function(des) {
  df <- degf(des)
  fit <- svyglm(y ~ x + sex, des)
  ct <- coef(summary(fit))
  q <- svyquantile(~y, des, quantiles = Q, ci = TRUE, df = df)
  list(degf = sc(df),
       mean_multi = stat_out(svymean(~y + x, des)),
       # svyby(..., covmat = TRUE) errors on calibrated designs in survey 4.1.1
       mean_by = (function(b) list(estimate = unname(as.vector(coef(b))),
                                   se = unname(as.vector(SE(b)))))(svyby(~y, ~dom, des, svymean)),
       var = list(estimate = sc(as.numeric(coef(svyvar(~y, des)))), se = sc(as.numeric(SE(svyvar(~y, des))))),
       quantile = quant_out(q),
       glm = list(estimate = unname(ct[, 1]), se = unname(ct[, 2])),
       chisq_F = chisq_out(svychisq(~r3 + cat4, des, statistic = "F")))
}
post <- postStratify(taylor, ~sex, pop_sex)
raked <- rake(taylor, list(~sex, ~dom), list(pop_sex, pop_dom),
              control = list(maxit = 100, epsilon = 1e-9, verbose = FALSE))  # converged, as um.rake

lincom_available <- requireNamespace("CompQuadForm", quietly = TRUE)
result <- list(
  generator = sc("tests/reference/design/analysis.R"),
  r_version = sc(R.version.string),
  survey_version = sc(as.character(packageVersion("survey"))),
  jsonlite_version = sc(as.character(packageVersion("jsonlite"))),
  compquadform_available = sc(lincom_available),
  data = sc("data/analysis_clus.csv"),
  taylor_call = sc("svydesign(ids = ~psu, strata = ~stratum, weights = ~w, fpc = ~fpc_psu, nest = TRUE, data = d)"),
  replicate_call = sc("as.svrepdesign(taylor, type = \"JKn\")"),
  quantiles = Q,
  newdata = cols(newdata),
  taylor = run(taylor, FALSE),
  jkn = run(jkn, TRUE),
  calibration_totals = list(sex = cols(pop_sex), dom = cols(pop_dom)),
  poststratified = calibrated(post),
  raked = calibrated(raked)
)
writeLines(json(result), file.path(here, "analysis.json"))
cat("wrote", file.path(here, "analysis.json"), "\n")
