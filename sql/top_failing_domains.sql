-- top_failing_domains.sql
-- What it returns: the recipient domains with the most failed deliveries (typos such as
-- docomo.ne.jpp, dead company domains, a carrier domain in trouble).
-- Reads:   attempts (sql/attempts.sql: each delivery attempt once, a bounce mail's row only
--          when bound to mail we sent: sql/bound_marks.sql, kept by the run). Macros: local_day, partition_in_period, day_in_period (sql/macros.sql)
-- Params:  $tz             IANA zone whose calendar days count
--          $since, $until  DATE or NULL: first and last local day (inclusive)
--          $limit          at most this many domains
-- Columns: domain, carrier, attempts, failed, deferred, failure_rate, failed_recipients,
--          top_reason
-- Definitions: carrier = the domain's carrier (the first by name if it maps to several);
-- failed = final failures (bounced, expired, undeliverable); failure_rate =
-- failed / finished attempts (all but deferrals); top_reason = the most common reason among the
-- domain's undelivered attempts (ties: alphabetical). Domains with no failure and no deferral
-- are left out. Order: failed, then deferred (both descending), then domain.

WITH stored AS (
    SELECT coalesce(recipient_domain, '') AS domain, coalesce(carrier, 'unknown') AS carrier,
           recipient, status, coalesce(reason, 'undefined') AS reason, local_day(ts, $tz) AS day
    FROM attempts
    WHERE partition_in_period(date, $since, $until)
),

in_period AS (
    SELECT * FROM stored WHERE day_in_period(day, $since, $until)
),

per_domain AS (
    SELECT domain,
           min(carrier) AS carrier,
           CAST(count(*) AS BIGINT) AS attempts,
           CAST(count(*) FILTER (WHERE status IN ('bounced', 'expired', 'undeliverable')) AS BIGINT) AS failed,
           CAST(count(*) FILTER (WHERE status = 'deferred') AS BIGINT) AS deferred,
           CAST(count(*) FILTER (WHERE status <> 'deferred') AS BIGINT) AS finished,
           CAST(count(DISTINCT recipient) FILTER (WHERE status IN ('bounced', 'expired', 'undeliverable')) AS BIGINT)
               AS failed_recipients
    FROM in_period
    GROUP BY domain
),

reason_totals AS (
    SELECT domain, reason, CAST(count(*) AS BIGINT) AS n
    FROM in_period
    WHERE status <> 'sent'
    GROUP BY domain, reason
),

reason_counts AS (
    SELECT domain, reason, n, row_number() OVER (PARTITION BY domain ORDER BY n DESC, reason) AS rank
    FROM reason_totals
),

final AS (
    SELECT d.domain, d.carrier, d.attempts, d.failed, d.deferred,
           CAST(d.failed AS DOUBLE) / nullif(d.finished, 0) AS failure_rate,
           d.failed_recipients, r.reason AS top_reason
    FROM per_domain d
    LEFT JOIN reason_counts r ON r.domain = d.domain AND r.rank = 1
    WHERE d.failed > 0 OR d.deferred > 0
)

SELECT * FROM final ORDER BY failed DESC, deferred DESC, domain LIMIT $limit
