# Reference values for estimate_care_home_funding's design-based part, from R's `survey`.
#
# Run from anywhere:   Rscript tests/reference/care_homes/care_homes.R
# Reads the stored case data/register.csv and data/returns.csv (two regions of the
# synthetic England's care homes, written by make_case.py) and writes care_homes.json
# beside this script. Every number in the JSON is printed by R (sprintf("%.17g")).
#
# The design is the one the Python side builds: the responding homes, stratified by
# region, start weight = register homes / responding homes in the region, fpc =
# register homes in the region; calibrated with the raking distance so that the
# weighted homes and beds equal the register's in every category of region,
# home_type and size_band. Beds constraints: every region, and all but the last
# category of home_type and size_band (the rest would repeat the total).

suppressPackageStartupMessages({
  library(survey)
  library(jsonlite)
})
options(warn = 2)
options(survey.lonely.psu = "certainty")

script_dir <- local({
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
})
register <- read.csv(file.path(script_dir, "data", "register.csv"), colClasses = c(home_id = "character",
                     area_code = "character"))
returns <- read.csv(file.path(script_dir, "data", "returns.csv"), colClasses = c(home_id = "character"))
register$home_type <- factor(register$home_type, levels = c("older_people", "younger_adults"))
register$size_band <- factor(register$size_band, levels = c("1-19", "20-49", "50+"))
register$rating <- factor(register$rating, levels = c("outstanding", "good",
                          "requires_improvement", "inadequate", "not_rated"))
register$region <- factor(register$region)
s <- merge(returns, register, by = "home_id", sort = FALSE)
s <- s[match(returns$home_id, s$home_id), ]

N_h <- table(register$region)
n_h <- table(s$region)
s$w0 <- as.numeric(N_h[as.character(s$region)] / n_h[as.character(s$region)])
s$fpc <- as.numeric(N_h[as.character(s$region)])

# beds by category: all regions; home_type and size_band without their last level
add_beds <- function(data, variable, levels) {
  for (l in levels) data[[paste0("beds_", variable, "_", make.names(l))]] <- data$beds * (data[[variable]] == l)
  data
}
beds_cols <- list(region = levels(register$region),
                  home_type = head(levels(register$home_type), -1),
                  size_band = head(levels(register$size_band), -1))
for (v in names(beds_cols)) {
  s <- add_beds(s, v, beds_cols[[v]])
  register <- add_beds(register, v, beds_cols[[v]])
}
bcols <- unlist(lapply(names(beds_cols), function(v) paste0("beds_", v, "_", make.names(beds_cols[[v]]))))
f <- as.formula(paste("~ region + home_type + size_band +", paste(bcols, collapse = " + ")))

d <- svydesign(ids = ~1, strata = ~region, fpc = ~fpc, weights = ~w0, data = s)
pop <- colSums(model.matrix(f, data = register))
cal <- calibrate(d, f, population = pop, calfun = "raking", epsilon = 1e-13, maxit = 200)

num <- function(x) sprintf("%.17g", x)
ratio_by <- function(by) {
  if (is.null(by)) {
    r <- svyratio(~self_funded, ~residents, cal)
    return(list(level = list("all"), estimate = as.numeric(coef(r)), se = as.numeric(SE(r)),
                n = nrow(s)))
  }
  r <- svyby(~self_funded, as.formula(paste0("~", by)), denominator = ~residents, design = cal,
             FUN = svyratio, keep.var = TRUE)
  counts <- table(s[[by]])
  lv <- as.character(r[[by]])
  list(level = as.list(lv), estimate = as.numeric(coef(r)), se = as.numeric(SE(r)),
       n = as.integer(counts[lv]))
}
out <- list(
  R = R.version.string,
  survey = as.character(packageVersion("survey")),
  weights = weights(cal),
  home_id = s$home_id,
  ratio = list(
    england = ratio_by(NULL),
    area_code = ratio_by("area_code"),
    region = ratio_by("region"),
    home_type = ratio_by("home_type"),
    size_band = ratio_by("size_band"),
    rating = ratio_by("rating")
  )
)
# full precision: jsonlite's digits = NA writes 15 significant digits; use I() strings
fmt <- function(x) {
  if (is.list(x)) return(lapply(x, fmt))
  if (is.numeric(x) && !is.integer(x)) return(as.numeric(num(x)))
  x
}
writeLines(toJSON(fmt(out), auto_unbox = TRUE, digits = NA, pretty = FALSE),
           file.path(script_dir, "care_homes.json"))
cat("wrote", file.path(script_dir, "care_homes.json"), "\n")
