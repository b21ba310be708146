# The JSON writer of the R reference scripts (sourced by design/*.R and
# weighting/weighting.R). jsonlite stops at 15 significant digits; here every
# double is printed with sprintf("%.17g") so it round-trips, NA/NaN/Inf (and a
# logical vector of NAs only) are null, a matrix is a list of rows, a factor is
# its labels, and sc(x) marks a length-1 value to be written without brackets.
#   json <- json_writer(",\n")   # the separator between an object's members
json_writer <- function(member_sep = ",") {
  json <- function(x) {
    if (is.null(x)) return("null")
    if (is.list(x)) {
      nm <- names(x)
      parts <- vapply(x, json, character(1))
      if (is.null(nm)) return(paste0("[", paste(parts, collapse = ","), "]"))
      keys <- vapply(nm, function(k) as.character(jsonlite::toJSON(k, auto_unbox = TRUE)), character(1))
      return(paste0("{", paste0(keys, ":", parts, collapse = member_sep), "}"))
    }
    if (is.matrix(x)) {
      return(json(lapply(seq_len(nrow(x)), function(i) unname(x[i, ]))))
    }
    scalar <- isTRUE(attr(x, "scalar"))
    x <- unname(x)
    if (is.factor(x)) x <- as.character(x)
    vals <- if (is.double(x) || is.logical(x) && all(is.na(x))) {
      x <- as.double(x)
      ifelse(is.finite(x), sprintf("%.17g", x), "null")
    } else if (is.integer(x)) {
      ifelse(is.na(x), "null", as.character(x))
    } else if (is.logical(x)) {
      ifelse(is.na(x), "null", ifelse(x, "true", "false"))
    } else {
      vapply(as.character(x), function(s) as.character(jsonlite::toJSON(s, auto_unbox = TRUE)), character(1))
    }
    if (scalar) return(vals)
    paste0("[", paste(vals, collapse = ","), "]")
  }
  json
}
sc <- function(x) structure(x, scalar = TRUE)
