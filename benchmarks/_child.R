# Run one R snippet and time it: the R twin of _child.py.
#   Rscript _child.R SNIPPET.R DATA_DIR OUT_PREFIX PARAMS_JSON
# A snippet defines load_data(cols, params), setup(obj, params),
# run(state, params) and extract(state, result, params) (a named list of
# numeric vectors). Columns come from the raw little-endian binaries that
# workloads.py writes beside the .npz, so R needs only jsonlite.
suppressPackageStartupMessages(library(jsonlite))
args <- commandArgs(trailingOnly = TRUE)
snippet <- args[1]; data_dir <- args[2]; out_prefix <- args[3]
params <- fromJSON(args[4])
repeats <- as.integer(if (is.null(params$repeats)) 5 else params$repeats)

status_kb <- function(field) {
  x <- readLines("/proc/self/status")
  line <- x[startsWith(x, paste0(field, ":"))]
  if (length(line) == 0) return(NA_real_)
  as.numeric(strsplit(trimws(sub(paste0(field, ":"), "", line)), "\\s+")[[1]][1])
}
reset_peak <- function() {
  ok <- tryCatch({ writeLines("5", "/proc/self/clear_refs"); TRUE },
                 error = function(e) FALSE, warning = function(w) FALSE)
  ok
}

out <- list(status = "ok", version = paste("survey", as.character(packageVersion("survey"))),
            versions = list(R = paste(R.version$major, R.version$minor, sep = "."),
                            survey = as.character(packageVersion("survey")),
                            BLAS = extSoftVersion()[["BLAS"]],
                            LAPACK = La_library()))
res <- tryCatch({
  manifest <- fromJSON(file.path(data_dir, "columns.json"))
  cols <- list()
  for (nm in names(manifest)) {
    m <- manifest[[nm]]
    con <- file(file.path(data_dir, paste0(nm, ".bin")), "rb")
    cols[[nm]] <- if (m$type == "double") readBin(con, "double", m$length, size = 8, endian = "little")
                  else readBin(con, "integer", m$length, size = 4, endian = "little")
    close(con)
  }
  source(snippet, local = TRUE)
  obj <- load_data(cols, params)
  rm(cols); invisible(gc())
  t0 <- proc.time()[["elapsed"]]
  state <- setup(obj, params)
  out$setup_s <- proc.time()[["elapsed"]] - t0
  t0 <- proc.time()[["elapsed"]]
  result <- run(state, params)
  out$warmup_s <- proc.time()[["elapsed"]] - t0
  rm(result); invisible(gc())
  # Resetting the high-water mark loses the peak so far: keep it first.
  peak_kb <- status_kb("VmHWM")
  can_reset <- reset_peak()
  base_kb <- status_kb("VmRSS")
  times <- numeric(repeats)
  cpu <- numeric(repeats)
  for (i in seq_len(repeats)) {
    result <- NULL
    p0 <- proc.time()
    t0 <- Sys.time()
    result <- run(state, params)
    times[i] <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
    p1 <- proc.time()
    cpu[i] <- (p1[["user.self"]] - p0[["user.self"]]) + (p1[["sys.self"]] - p0[["sys.self"]])
  }
  out$cpu_s <- median(cpu)
  hwm_kb <- status_kb("VmHWM")
  out$times <- times
  out$median_s <- median(times); out$min_s <- min(times); out$max_s <- max(times)
  out$peak_MB <- max(peak_kb, hwm_kb) / 1024
  out$call_MB <- if (can_reset) max(hwm_kb - base_kb, 0) / 1024 else NA
  ex <- extract(state, result, params)
  files <- list()
  for (nm in names(ex)) {
    path <- paste0(out_prefix, "__", nm, ".bin")
    con <- file(path, "wb"); writeBin(as.double(ex[[nm]]), con, size = 8, endian = "little"); close(con)
    files[[nm]] <- path
  }
  out$outputs <- files
  if (exists("NOTES")) out$notes <- NOTES
  NULL
}, error = function(e) e)
if (!is.null(res)) {
  out$status <- "error"
  out$error <- conditionMessage(res)
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null"),
           paste0(out_prefix, ".json"))
