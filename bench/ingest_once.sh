#!/bin/bash
# One whole `mailhygiene ingest` of LOG into a fresh data dir, for A/B pairs with bench/ab_pairs.py:
#   bench/ingest_once.sh CHECKOUT LOG [VAR=VALUE ...]
# CHECKOUT: a checkout with its venv built (make venv); VAR=VALUE: environment of the run.
# e.g. .venv/bin/python bench/ab_pairs.py -n 7 --timeout 600 --vs "bench/ingest_once.sh /path/to/main LOG" -- bench/ingest_once.sh . LOG
# (compile both checkouts first: .venv/bin/python -m compileall -q pipeline)
checkout=$1; log=$2; shift 2
# The data dir is new each run, and so is the record of data dirs that held data (XDG_STATE_HOME,
# pipeline/store/vanished.py), as in bench/bench_ingest.py: a run neither adds to the user's record
# nor is refused because an earlier run's deleted dir had the same name.
data=$(mktemp -d /tmp/ingest-once.XXXXXXXX)
state=$(mktemp -d /tmp/ingest-once-state.XXXXXXXX)
env XDG_STATE_HOME="$state" "$@" "$checkout/.venv/bin/mailhygiene" --data-dir "$data" --timezone Asia/Tokyo \
    ingest --year 2026 --no-progress "$log" > /dev/null
rc=$?; rm -rf "$data" "$state"; exit $rc
