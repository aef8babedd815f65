-- reasons_by_carrier.sql
-- What it returns: why attempts did not deliver, per carrier: one row per carrier, reason and
-- scope (whose fault: recipient, sender = us, network, unknown).
-- Reads:   attempts (sql/attempts.sql: each delivery attempt once, a bounce mail's row only
--          when bound to mail we sent: sql/bound_marks.sql, kept by the run). Macros: local_day, partition_in_period, day_in_period (sql/macros.sql)
-- Params:  $tz             IANA zone whose calendar days count
--          $since, $until  DATE or NULL: first and last local day (inclusive)
-- Columns: carrier, reason, scope, attempts, deferred, failed, recipients, share_of_carrier
-- Definitions: only attempts that did not deliver (status <> 'sent'); failed = final failures
-- (bounced, expired, undeliverable); share_of_carrier = attempts / all undelivered attempts of
-- that carrier in the period.

WITH stored AS (
    SELECT coalesce(carrier, 'unknown') AS carrier, recipient, status,
           coalesce(scope, 'unknown') AS scope, coalesce(reason, 'undefined') AS reason,
           local_day(ts, $tz) AS day
    FROM attempts
    WHERE partition_in_period(date, $since, $until) AND status <> 'sent'
),

undelivered AS (
    SELECT * FROM stored WHERE day_in_period(day, $since, $until)
),

per_reason AS (
    SELECT carrier, reason, scope,
           CAST(count(*) AS BIGINT) AS attempts,
           CAST(count(*) FILTER (WHERE status = 'deferred') AS BIGINT) AS deferred,
           CAST(count(*) FILTER (WHERE status IN ('bounced', 'expired', 'undeliverable')) AS BIGINT) AS failed,
           CAST(count(DISTINCT recipient) AS BIGINT) AS recipients
    FROM undelivered
    GROUP BY carrier, reason, scope
),

final AS (
    SELECT *, CAST(attempts AS DOUBLE) / sum(attempts) OVER (PARTITION BY carrier) AS share_of_carrier
    FROM per_reason
)

SELECT * FROM final ORDER BY carrier, attempts DESC, reason, scope
