/* top_failing_domains.sql */
/* What it returns: the recipient domains with the most failed deliveries (typos such as */
/* docomo.ne.jpp, dead company domains, a carrier domain in trouble). */
/* Reads:   attempts (sql/attempts.sql: each delivery attempt once, a bounce mail's row only */
/*          when bound to mail we sent: sql/bound_marks.sql, kept by the run). Macros: local_day, partition_in_period, day_in_period (sql/macros.sql) */
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
WITH stored AS (
  SELECT
    COALESCE(recipient_domain, '') AS domain,
    COALESCE(carrier, 'unknown') AS carrier,
    recipient,
    status,
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
), in_period AS (
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
), per_domain AS (
  SELECT
    domain,
    MIN(carrier) AS carrier,
    CAST(COUNT(*) AS BIGINT) AS attempts,
    CAST(COUNT(*) FILTER(WHERE
      status IN ('bounced', 'expired', 'undeliverable')) AS BIGINT) AS failed,
    CAST(COUNT(*) FILTER(WHERE
      status = 'deferred') AS BIGINT) AS deferred,
    CAST(COUNT(*) FILTER(WHERE
      status <> 'deferred') AS BIGINT) AS finished,
    CAST(COUNT(DISTINCT recipient) FILTER(WHERE
      status IN ('bounced', 'expired', 'undeliverable')) AS BIGINT) AS failed_recipients
  FROM in_period
  GROUP BY
    domain
), reason_totals AS (
  SELECT
    domain,
    reason,
    CAST(COUNT(*) AS BIGINT) AS n
  FROM in_period
  WHERE
    status <> 'sent'
  GROUP BY
    domain,
    reason
), reason_counts AS (
  SELECT
    domain,
    reason,
    n,
    ROW_NUMBER() OVER (PARTITION BY domain ORDER BY n DESC, reason NULLS LAST) AS rank
  FROM reason_totals
), final AS (
  SELECT
    d.domain,
    d.carrier,
    d.attempts,
    d.failed,
    d.deferred,
    CAST(d.failed AS DOUBLE) / NULLIF(d.finished, 0) AS failure_rate,
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
