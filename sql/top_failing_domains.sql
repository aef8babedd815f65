-- top_failing_domains.sql
-- What it returns: the recipient domains with the most failed deliveries (typos such as
-- docomo.ne.jpp, dead company domains, a carrier domain in trouble).
-- Reads:   events, through events_in_period() (sql/macros.sql)
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

WITH in_period AS (
    SELECT coalesce(recipient_domain, '') AS domain, coalesce(carrier, 'unknown') AS carrier,
           recipient, status, coalesce(reason, 'undefined') AS reason, day
    FROM events_in_period($tz, $since, $until)
),

per_domain AS (
    SELECT domain,
           min(carrier) AS carrier,
           count(*) AS attempts,
           count(*) FILTER (WHERE status IN ('bounced', 'expired', 'undeliverable')) AS failed,
           count(*) FILTER (WHERE status = 'deferred') AS deferred,
           count(*) FILTER (WHERE status <> 'deferred') AS finished,
           count(DISTINCT recipient) FILTER (WHERE status IN ('bounced', 'expired', 'undeliverable')) AS failed_recipients
    FROM in_period
    GROUP BY domain
),

reason_counts AS (
    SELECT domain, reason, count(*) AS n,
           row_number() OVER (PARTITION BY domain ORDER BY count(*) DESC, reason) AS rank
    FROM in_period
    WHERE status <> 'sent'
    GROUP BY domain, reason
),

final AS (
    SELECT d.domain, d.carrier, d.attempts, d.failed, d.deferred,
           d.failed / nullif(d.finished, 0) AS failure_rate,
           d.failed_recipients, r.reason AS top_reason
    FROM per_domain d
    LEFT JOIN reason_counts r ON r.domain = d.domain AND r.rank = 1
    WHERE d.failed > 0 OR d.deferred > 0
)

SELECT * FROM final ORDER BY failed DESC, deferred DESC, domain LIMIT $limit
