-- carrier_error_addresses.sql
-- What it returns: per carrier, how many distinct addresses had a counted error in a period: a
-- lower bound of sql/carrier_active_addresses.sql that costs no pass over the events (the
-- suppression guard's per-carrier share test tries it first).
-- Reads:   counted_errors (the rows of sql/counted_errors.sql, kept by the rule's run)
-- Params:  $since, $as_of  TIMESTAMPTZ bounds of the period (inclusive)
--          $carriers       VARCHAR[]: the carriers to count ('unknown' = no carrier)
-- Columns: carrier, error_addresses

WITH period AS (
    SELECT coalesce(carrier, 'unknown') AS carrier, address FROM counted_errors
    WHERE ts >= $since AND ts <= $as_of
),

final AS (
    SELECT carrier, CAST(count(DISTINCT address) AS BIGINT) AS error_addresses
    FROM period
    WHERE list_contains($carriers, carrier)
    GROUP BY carrier
)

SELECT * FROM final ORDER BY carrier
