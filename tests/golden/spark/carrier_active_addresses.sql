/* carrier_active_addresses.sql */
/* What it returns: per carrier, how many distinct addresses had any delivery attempt in a */
/* period (the denominator of the suppression guard's per-carrier share test: a carrier that */
/* refuses part of our addresses with "user unknown" hides in the whole list's share). */
/* Reads:   attempts (sql/attempts.sql: no null-sender row, so our own bounce addresses, which */
/*          receive the DSNs, are not active addresses). Macros: partition_in_period (sql/macros.sql). */
/* Params:  $since, $as_of  TIMESTAMPTZ bounds of the period (inclusive) */
/*          $carriers       VARCHAR[]: the carriers to count ('unknown' = no carrier) */
/* Columns: carrier, active_addresses */
WITH period AS (
  SELECT
    COALESCE(carrier, 'unknown') AS carrier,
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
    carrier,
    CAST(COUNT(DISTINCT recipient) AS BIGINT) AS active_addresses
  FROM period
  WHERE
    ARRAY_CONTAINS(ARRAY('au', 'docomo'), carrier)
  GROUP BY
    carrier
)
SELECT
  *
FROM final
ORDER BY
  carrier NULLS LAST
