-- carrier_active_addresses.sql
-- What it returns: per carrier, how many distinct addresses had any delivery attempt in a
-- period (the denominator of the suppression guard's per-carrier share test: a carrier that
-- refuses part of our addresses with "user unknown" hides in the whole list's share).
-- Reads:   attempts (sql/attempts.sql: no null-sender row, so our own bounce addresses, which
--          receive the DSNs, are not active addresses). Macros: partition_in_period (sql/macros.sql).
-- Params:  $since, $as_of  TIMESTAMPTZ bounds of the period (inclusive)
--          $carriers       VARCHAR[]: the carriers to count ('unknown' = no carrier)
-- Columns: carrier, active_addresses

WITH period AS (
    SELECT coalesce(carrier, 'unknown') AS carrier, recipient FROM attempts
    WHERE partition_in_period(date, $since, $as_of) AND ts >= $since AND ts <= $as_of
),

final AS (
    SELECT carrier, CAST(count(DISTINCT recipient) AS BIGINT) AS active_addresses
    FROM period
    WHERE list_contains($carriers, carrier)
    GROUP BY carrier
)

SELECT * FROM final ORDER BY carrier
