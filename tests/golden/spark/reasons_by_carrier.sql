/* reasons_by_carrier.sql */
/* What it returns: why attempts did not deliver, per carrier: one row per carrier, reason and */
/* scope (whose fault: recipient, sender = us, network, unknown). */
/* Reads:   attempts (sql/attempts.sql: each delivery attempt once, a bounce mail's row only */
/*          when bound to mail we sent: sql/bound_marks.sql, kept by the run). Macros: local_day, partition_in_period, day_in_period (sql/macros.sql) */
/* Params:  $tz             IANA zone whose calendar days count */
/*          $since, $until  DATE or NULL: first and last local day (inclusive) */
/* Columns: carrier, reason, scope, attempts, deferred, failed, recipients, share_of_carrier */
/* Definitions: only attempts that did not deliver (status <> 'sent'); failed = final failures */
/* (bounced, expired, undeliverable); share_of_carrier = attempts / all undelivered attempts of */
/* that carrier in the period. */
WITH stored AS (
  SELECT
    COALESCE(carrier, 'unknown') AS carrier,
    recipient,
    status,
    COALESCE(scope, 'unknown') AS scope,
    COALESCE(reason, 'undefined') AS reason,
    (
      CAST(FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS DATE)
    ) AS day
  FROM attempts
  WHERE
    (
      (
        CAST('2026-11-01' AS DATE) IS NULL
        OR date >= DATE_FORMAT(CAST(CAST('2026-11-01' AS DATE) AS DATE) - 1, 'yyyy-MM-dd')
      )
      AND (
        CAST('2026-11-30' AS DATE) IS NULL
        OR date <= DATE_FORMAT(CAST(CAST('2026-11-30' AS DATE) AS DATE) + 1, 'yyyy-MM-dd')
      )
    )
    AND status <> 'sent'
), undelivered AS (
  SELECT
    *
  FROM stored
  WHERE
    (
      (
        CAST('2026-11-01' AS DATE) IS NULL
        OR day >= CAST(CAST('2026-11-01' AS DATE) AS DATE)
      )
      AND (
        CAST('2026-11-30' AS DATE) IS NULL
        OR day <= CAST(CAST('2026-11-30' AS DATE) AS DATE)
      )
    )
), per_reason AS (
  SELECT
    carrier,
    reason,
    scope,
    CAST(COUNT(*) AS BIGINT) AS attempts,
    CAST(COUNT(*) FILTER(WHERE
      status = 'deferred') AS BIGINT) AS deferred,
    CAST(COUNT(*) FILTER(WHERE
      status IN ('bounced', 'expired', 'undeliverable')) AS BIGINT) AS failed,
    CAST(COUNT(DISTINCT recipient) AS BIGINT) AS recipients
  FROM undelivered
  GROUP BY
    carrier,
    reason,
    scope
), final AS (
  SELECT
    *,
    CAST(attempts AS DOUBLE) / SUM(attempts) OVER (PARTITION BY carrier) AS share_of_carrier
  FROM per_reason
)
SELECT
  *
FROM final
ORDER BY
  carrier NULLS LAST,
  attempts DESC,
  reason NULLS LAST,
  scope NULLS LAST
