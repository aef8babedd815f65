/* top_failing_domains.sql */
/* What it returns: the recipient domains with the most failed deliveries (typos such as */
/* docomo.ne.jpp, dead company domains, a carrier domain in trouble). */
/* Reads:   events, through events_in_period() (sql/macros.sql) */
/* Params:  $tz             IANA zone whose calendar days count */
/*          $since, $until  DATE or NULL: first and last local day (inclusive) */
/*          $limit          at most this many domains */
/* Columns: domain, carrier, attempts, failed, deferred, failure_rate, failed_recipients, */
/*          top_reason */
/* Definitions: carrier = the domain's carrier (the first by name if it maps to several); */
/* failed = final failures (bounced, expired, undeliverable); failure_rate = */
/* failed / finished attempts (all but deferrals); top_reason = the most common reason among the */
/* domain's undelivered attempts (ties: alphabetical). Domains with no failure and no deferral */
/* are left out. Order: failed, then deferred (both descending), then domain. */
WITH in_period AS (
  SELECT
    COALESCE(recipient_domain, '') AS domain,
    COALESCE(carrier, 'unknown') AS carrier,
    recipient,
    status,
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
), per_domain AS (
  SELECT
    domain,
    MIN(carrier) AS carrier,
    COUNT(*) AS attempts,
    COUNT(*) FILTER(WHERE
      status IN ('bounced', 'expired', 'undeliverable')) AS failed,
    COUNT(*) FILTER(WHERE
      status = 'deferred') AS deferred,
    COUNT(*) FILTER(WHERE
      status <> 'deferred') AS finished,
    COUNT(DISTINCT recipient) FILTER(WHERE
      status IN ('bounced', 'expired', 'undeliverable')) AS failed_recipients
  FROM in_period
  GROUP BY
    domain
), reason_counts AS (
  SELECT
    domain,
    reason,
    COUNT(*) AS n,
    ROW_NUMBER() OVER (PARTITION BY domain ORDER BY COUNT(*) DESC, reason NULLS LAST) AS rank
  FROM in_period
  WHERE
    status <> 'sent'
  GROUP BY
    domain,
    reason
), final AS (
  SELECT
    d.domain,
    d.carrier,
    d.attempts,
    d.failed,
    d.deferred,
    d.failed / NULLIF(d.finished, 0) AS failure_rate,
    d.failed_recipients,
    r.reason AS top_reason
  FROM per_domain AS d
  LEFT JOIN reason_counts AS r
    ON r.domain = d.domain AND r.rank = 1
  WHERE
    d.failed > 0 OR d.deferred > 0
)
SELECT
  *
FROM final
ORDER BY
  failed DESC,
  deferred DESC,
  domain NULLS LAST
LIMIT 20
