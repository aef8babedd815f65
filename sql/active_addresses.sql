-- active_addresses.sql
-- What it returns: how many distinct addresses had any delivery attempt in a period (the
-- denominator of the suppression guard's "at most max_new_fraction new entries" test).
-- Reads:   attempts (sql/attempts.sql: no null-sender row, so our own bounce addresses, which
--          receive the DSNs, are not active addresses). Macros: partition_in_period (sql/macros.sql).
-- Params:  $since, $as_of  TIMESTAMPTZ bounds of the period (inclusive)
-- Columns: active_addresses

WITH period AS (
    SELECT recipient FROM attempts
    WHERE partition_in_period(date, $since, $as_of) AND ts >= $since AND ts <= $as_of
),

final AS (
    SELECT CAST(count(DISTINCT recipient) AS BIGINT) AS active_addresses FROM period
)

SELECT * FROM final
