/* reasons_by_carrier.sql */
/* What it returns: why attempts did not deliver, per carrier: one row per carrier, reason and */
/* scope (whose fault: recipient, sender = us, network, unknown). */
/* Reads:   events, through events_in_period() (sql/macros.sql) */
/* Params:  $tz             IANA zone whose calendar days count */
/*          $since, $until  DATE or NULL: first and last local day (inclusive) */
/* Columns: carrier, reason, scope, attempts, deferred, failed, recipients, share_of_carrier */
/* Definitions: only attempts that did not deliver (status <> 'sent'); failed = final failures */
/* (bounced, expired, undeliverable); share_of_carrier = attempts / all undelivered attempts of */
/* that carrier in the period. */
WITH undelivered AS (
  SELECT
    COALESCE(carrier, 'unknown') AS carrier,
    recipient,
    status,
    COALESCE(scope, 'unknown') AS scope,
    COALESCE(reason, 'undefined') AS reason,
    day
  FROM (
    SELECT
      *
    FROM (
      SELECT
        *,
        CAST(FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS DATE) AS day
      FROM events
      WHERE
        (
          CAST('2026-11-01' AS DATE) IS NULL
          OR date >= DATE_FORMAT(CAST(CAST('2026-11-01' AS DATE) AS DATE) - 1, 'yyyy-MM-dd')
        )
        AND (
          CAST('2026-11-30' AS DATE) IS NULL
          OR date <= DATE_FORMAT(CAST(CAST('2026-11-30' AS DATE) AS DATE) + 1, 'yyyy-MM-dd')
        )
    )
    WHERE
      (
        CAST('2026-11-01' AS DATE) IS NULL
        OR day >= CAST(CAST('2026-11-01' AS DATE) AS DATE)
      )
      AND (
        CAST('2026-11-30' AS DATE) IS NULL
        OR day <= CAST(CAST('2026-11-30' AS DATE) AS DATE)
      )
  ) AS events_in_period
  WHERE
    status <> 'sent'
), per_reason AS (
  SELECT
    carrier,
    reason,
    scope,
    COUNT(*) AS attempts,
    COUNT(*) FILTER(WHERE
      status = 'deferred') AS deferred,
    COUNT(*) FILTER(WHERE
      status IN ('bounced', 'expired', 'undeliverable')) AS failed,
    COUNT(DISTINCT recipient) AS recipients
  FROM undelivered
  GROUP BY
    carrier,
    reason,
    scope
), final AS (
  SELECT
    *,
    attempts / SUM(attempts) OVER (PARTITION BY carrier) AS share_of_carrier
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
