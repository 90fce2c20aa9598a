#!/usr/bin/env bash
# Example gq task: estimate pi by Monte Carlo with a given seed, report progress with
# `gq-agent tag`, and write one results CSV (results.csv in the task's folder).
set -euo pipefail
seed=1 samples=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
steps=4
per=$(( samples / steps ))
inside=0
for step in $(seq 1 $steps); do
  hits=$(awk -v s="$(( seed * 1000 + step ))" -v n="$per" 'BEGIN { srand(s); h = 0; for (i = 0; i < n; i++) { x = rand(); y = rand(); if (x*x + y*y <= 1) h++ } print h }')
  inside=$(( inside + hits ))
  # Progress, seen in `gq status` (and as an EC2 tag on AWS).
  gq-agent tag percent_complete $(( step * 100 / steps ))
done
total=$(( per * steps ))
awk -v seed="$seed" -v n="$total" -v h="$inside" -v host="$(uname -n)" 'BEGIN {
  est = 4 * h / n; err = est - 3.141592653589793; if (err < 0) err = -err
  print "seed,samples,pi_estimate,abs_error,note"
  printf "%d,%d,%.6f,%.6f,\"ran on %s, in \"\"%s\"\"\"\n", seed, n, est, err, host, ENVIRON["GQ_INSTANCE_TYPE"]
}' > results.csv
echo "seed $seed: pi is about $(( 4 * inside * 1000000 / total ))e-6 from $total samples"
