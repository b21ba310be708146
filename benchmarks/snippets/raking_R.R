# raking, R survey: rake(des, sample.margins, population.margins,
#   control = list(maxit = 1000, epsilon = tol)).
# R's rake stops when the largest change of any cell of the full
# cross-classification between sweeps is below epsilon * sum(weights): with
# epsilon = 1e-8 the margins are met only to about 2e-6 (relative), so
# epsilon = tol / 100 is used to meet them to about 1e-8, as the others do.
suppressPackageStartupMessages(library(survey))
MARGIN_NAMES <- c("area", "age", "sex", "ethnic", "disability")
load_data <- function(cols, params) {
  df <- data.frame(w = cols$w)
  pm <- list()
  for (n in MARGIN_NAMES) {
    tot <- cols[[paste0("total__", n)]]
    lev <- as.character(seq_along(tot) - 1)
    df[[n]] <- factor(as.character(cols[[n]]), levels = lev)
    d <- data.frame(factor(lev, levels = lev), Freq = tot)
    names(d)[1] <- n
    pm[[n]] <- d
  }
  sm <- lapply(MARGIN_NAMES, function(n) as.formula(paste0("~", n)))
  list(df = df, pm = unname(pm), sm = sm)
}
setup <- function(obj, params) {
  list(des = svydesign(ids = ~1, weights = ~w, data = obj$df), pm = obj$pm, sm = obj$sm)
}
run <- function(state, params) {
  rake(state$des, state$sm, state$pm,
       control = list(maxit = 1000, epsilon = params$tol / 100, verbose = FALSE))
}
extract <- function(state, result, params) list(weights = weights(result))
