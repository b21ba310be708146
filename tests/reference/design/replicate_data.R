# Inputs for replicate.R: small synthetic designs, written once with a fixed
# seed. Values are rounded so the CSV text is exact and R and Python read the
# same numbers. Run from anywhere: Rscript replicate_data.R
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
out <- file.path(here, "data")
dir.create(out, showWarnings = FALSE)
set.seed(20240611)

make_rows <- function(stratum, psu, size) {
  data.frame(stratum = rep(stratum, size), psu = rep(psu, size))
}

add_variables <- function(df) {
  n <- nrow(df)
  key <- paste(df$stratum, df$psu)
  psu_effect <- rnorm(length(unique(key)), sd = 2)[match(key, unique(key))]
  df$w <- round(runif(n, 5, 50), 4)
  df$x <- round(runif(n, 1, 10), 4)
  df$y <- round(10 + 0.8 * df$x + psu_effect + rnorm(n, sd = 3), 4)
  df$factor4 <- sample(c("a", "b", "c", "d"), n, replace = TRUE, prob = c(0.4, 0.3, 0.2, 0.1))
  df$domain <- sample(c("north", "midlands", "south"), n, replace = TRUE)
  # shuffle rows so first appearance differs from sorted order
  df[sample.int(n), , drop = FALSE]
}

# 1. BRR / Fay: 12 strata labelled 1..12 (numbers: R's brrweights sorts them
#    as text, "1" < "10" < "2"), 2 PSUs each, PSU ids 1/2 repeated across
#    strata (nest = TRUE).
brr <- do.call(rbind, lapply(1:12, function(h) {
  rbind(make_rows(h, 1, sample(3:8, 1)), make_rows(h, 2, sample(3:8, 1)))
}))
brr <- add_variables(brr)
write.csv(brr, file.path(out, "replicate_brr.csv"), row.names = FALSE)

# 2. JK1: unstratified, 15 clusters with string ids, unequal sizes; fpc 60
#    population PSUs.
jk1 <- do.call(rbind, lapply(sprintf("c%02d", 1:15), function(c) {
  make_rows("all", c, sample(4:10, 1))
}))
jk1 <- add_variables(jk1)
jk1$stratum <- NULL
jk1$fpc <- 60
write.csv(jk1, file.path(out, "replicate_jk1.csv"), row.names = FALSE)

# 3. JKn: 6 string strata, 2-5 PSUs each (globally unique numeric PSU ids),
#    fpc per stratum; fpc_census makes stratum S6 a census (popsize = n_h).
sizes <- c(S1 = 2, S2 = 3, S3 = 4, S4 = 5, S5 = 3, S6 = 2)
pop <- c(S1 = 10, S2 = 12, S3 = 30, S4 = 8, S5 = 6, S6 = 40)
id <- 100
jkn <- do.call(rbind, lapply(names(sizes), function(h) {
  do.call(rbind, lapply(seq_len(sizes[[h]]), function(j) {
    id <<- id + 1
    make_rows(h, id, sample(3:9, 1))
  }))
}))
jkn <- add_variables(jkn)
jkn$fpc <- pop[jkn$stratum]
jkn$fpc_census <- ifelse(jkn$stratum == "S6", sizes[["S6"]], jkn$fpc)
write.csv(jkn, file.path(out, "replicate_jkn.csv"), row.names = FALSE)

# 4. Lonely PSUs: 5 strata, strata "B" and "D" have a single PSU.
lsizes <- c(A = 3, B = 1, C = 2, D = 1, E = 3)
id <- 0
lonely <- do.call(rbind, lapply(names(lsizes), function(h) {
  do.call(rbind, lapply(seq_len(lsizes[[h]]), function(j) {
    id <<- id + 1
    make_rows(h, id, sample(3:7, 1))
  }))
}))
lonely <- add_variables(lonely)
write.csv(lonely, file.path(out, "replicate_lonely.csv"), row.names = FALSE)

# 5. Sparse domain: JK1 on 8 unstratified clusters; domain "rare" lives in
#    cluster k01 only, so the replicate that drops k01 has no "rare" rows (a
#    NaN replicate mean that R's svyby discards for that domain alone).
sparse <- do.call(rbind, lapply(sprintf("k%02d", 1:8), function(c) {
  make_rows("all", c, sample(4:8, 1))
}))
sparse <- add_variables(sparse)
sparse$stratum <- NULL
sparse$domain[sparse$psu == "k01"][1:2] <- "rare"
write.csv(sparse, file.path(out, "replicate_sparse.csv"), row.names = FALSE)
