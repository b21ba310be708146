# calibration, R survey: calibrate(des, ~area + age + sex + ethnic + disability,
#   population = totals, calfun = "linear"). Population totals follow
#   model.matrix's columns: intercept (N), then every level but the first.
suppressPackageStartupMessages(library(survey))
MARGIN_NAMES <- c("area", "age", "sex", "ethnic", "disability")
load_data <- function(cols, params) {
  df <- data.frame(w = cols$w)
  pop <- c("(Intercept)" = sum(cols$total__area))
  for (n in MARGIN_NAMES) {
    tot <- cols[[paste0("total__", n)]]
    lev <- as.character(seq_along(tot) - 1)
    df[[n]] <- factor(as.character(cols[[n]]), levels = lev)
    p <- tot[-1]
    names(p) <- paste0(n, lev[-1])
    pop <- c(pop, p)
  }
  list(df = df, pop = pop)
}
setup <- function(obj, params) {
  list(des = svydesign(ids = ~1, weights = ~w, data = obj$df), pop = obj$pop)
}
run <- function(state, params) {
  calibrate(state$des, ~area + age + sex + ethnic + disability,
            population = state$pop, calfun = "linear")
}
extract <- function(state, result, params) list(weights = weights(result))
