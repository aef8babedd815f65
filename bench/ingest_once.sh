#!/bin/bash
# One whole `mailhygiene ingest` of LOG into a fresh data dir, for A/B pairs with bench/ab_pairs.py:
#   bench/ingest_once.sh CHECKOUT LOG [VAR=VALUE ...]
# CHECKOUT: a checkout with its venv built (make venv); VAR=VALUE: environment of the run.
# e.g. .venv/bin/python bench/ab_pairs.py -n 7 --timeout 600 --vs "bench/ingest_once.sh /path/to/main LOG" -- bench/ingest_once.sh . LOG
# (compile both checkouts first: .venv/bin/python -m compileall -q pipeline)
checkout=$1; log=$2; shift 2
data=$(mktemp -d /tmp/ingest-once.XXXX)
env "$@" "$checkout/.venv/bin/mailhygiene" --data-dir "$data" --timezone Asia/Tokyo ingest --year 2026 --no-progress "$log" > /dev/null
rc=$?; rm -rf "$data"; exit $rc
