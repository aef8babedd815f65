/* active_addresses.sql */
/* What it returns: how many distinct addresses had any delivery attempt in a period (the */
/* denominator of the suppression guard's "at most max_new_fraction new entries" test). */
/* Reads:   attempts (sql/attempts.sql: no null-sender row, so our own bounce addresses, which */
/*          receive the DSNs, are not active addresses). Macros: partition_in_period (sql/macros.sql). */
/* Params:  $since, $as_of  TIMESTAMPTZ bounds of the period (inclusive) */
/* Columns: active_addresses */
WITH period AS (
  SELECT
    recipient
  FROM attempts
  WHERE
    (
      (
        CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP) IS NULL
        OR date >= DATE_FORMAT(CAST(CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP) AS DATE) - 1, 'yyyy-MM-dd')
      )
      AND (
        CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP) IS NULL
        OR date <= DATE_FORMAT(CAST(CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP) AS DATE) + 1, 'yyyy-MM-dd')
      )
    )
    AND ts >= CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP)
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
), final AS (
  SELECT
    CAST(COUNT(DISTINCT recipient) AS BIGINT) AS active_addresses
  FROM period
)
SELECT
  *
FROM final
