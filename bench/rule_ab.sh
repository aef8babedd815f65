#!/bin/sh
# Alternate two installs of mailhygiene (e.g. main and a branch) on one data dir, whole processes:
#   bench/rule_ab.sh BIN_A BIN_B DATA AS_OF ROUNDS [suppress options...]
# prints "A|B wall user sys maxrss_kb" per run (GNU time). Example (BENCHMARKS.md, "Deliveries"):
#   bench/rule_ab.sh /work/main/.venv/bin/mailhygiene .venv/bin/mailhygiene DATA 2026-12-31 7 --dry-run --check-guard
A=$1; B=$2; DATA=$3; AS_OF=$4; N=$5; shift 5
i=0
while [ "$i" -lt "$N" ]; do
  for who in A B; do
    if [ $who = A ]; then bin=$A; else bin=$B; fi
    /usr/bin/time -f "$who %e %U %S %M" "$bin" --data-dir "$DATA" --timezone Asia/Tokyo suppress --as-of "$AS_OF" --json "$@" \
      > /dev/null 2> "${TMPDIR:-/tmp}/rule_ab.err" || { cat "${TMPDIR:-/tmp}/rule_ab.err"; exit 1; }
    tail -1 "${TMPDIR:-/tmp}/rule_ab.err"
  done
  i=$((i + 1))
done
