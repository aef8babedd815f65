-- carrier_figures.sql
-- What it returns: delivery figures per carrier and per day, ISO week or the whole period, plus
-- one row per period for all carriers together (carrier = 'all').
-- Reads:   attempts (sql/attempts.sql: the event store's rows, each delivery attempt once; a
--          bounce mail's row only when bound to mail we sent: sql/bound_marks.sql, kept by the run),
--          counted_errors (the rows of sql/counted_errors.sql, kept by the report's run as by the
--          rule's: the rule's counted errors, a bounce mail's row only when bound). Macros:
--          local_day, partition_in_period, day_in_period (sql/macros.sql)
-- Params:  $tz              IANA zone whose calendar days count (e.g. 'Asia/Tokyo')
--          $since, $until   DATE or NULL: first and last local day of the report (inclusive)
--          $grain           'day' | 'week' (Monday to Sunday) | 'period' (one row per carrier)
-- Columns: period_start, period_end, carrier, attempts, delivered, deferred, bounced, expired,
--          undeliverable, finished, recipients, counted_errors, hard_bounces, unknown_user,
--          filtered, bounce_rate, unknown_user_rate
-- Definitions (docs/reports.md):
--   attempts          every delivery attempt (a row of `attempts`: each attempt once, whichever
--                     witnesses recorded it), deferrals included
--   finished          attempts with a final outcome: delivered + bounced + expired + undeliverable
--                     (a deferral is a retry of the same message, so it is not an outcome)
--   recipients        distinct recipient addresses attempted
--   counted_errors    attempts that are rows of `counted_errors`: what the suppression rule
--                     counts (counted_error(): status deferred/bounced/expired AND scope
--                     'recipient' AND a reason of rule.counted_reasons; a bounce mail's row only
--                     when bound to mail we sent)
--   hard_bounces      hard AND status bounced/expired/undeliverable
--   unknown_user      finished attempts with reason 'user_unknown'
--   filtered          attempts with reason 'filtered' (the receiver refused us)
--   bounce_rate       (bounced + expired + undeliverable) / finished; NULL when finished = 0
--   unknown_user_rate unknown_user / finished; NULL when finished = 0

WITH stored AS (
    SELECT coalesce(a.carrier, 'unknown') AS carrier, a.recipient, a.status, a.reason, a.hard,
           local_day(a.ts, $tz) AS day, c.event_id IS NOT NULL AS counted
    FROM attempts a
    LEFT JOIN counted_errors c ON c.event_id = a.event_id
    WHERE partition_in_period(a.date, $since, $until)
),

in_period AS (
    SELECT * FROM stored WHERE day_in_period(day, $since, $until)
),

bucketed AS (
    SELECT *,
           CASE $grain WHEN 'day'  THEN day
                       WHEN 'week' THEN CAST(date_trunc('week', day) AS DATE)
                       ELSE (SELECT min(day) FROM in_period) END AS period_start,
           CASE $grain WHEN 'day'  THEN day
                       WHEN 'week' THEN CAST(date_trunc('week', day) AS DATE) + 6
                       ELSE (SELECT max(day) FROM in_period) END AS period_end
    FROM in_period
),

counts AS (
    SELECT period_start, period_end,
           CASE WHEN grouping(carrier) = 1 THEN 'all' ELSE carrier END AS carrier,
           CAST(count(*) AS BIGINT) AS attempts,
           CAST(count(*) FILTER (WHERE status = 'sent') AS BIGINT) AS delivered,
           CAST(count(*) FILTER (WHERE status = 'deferred') AS BIGINT) AS deferred,
           CAST(count(*) FILTER (WHERE status = 'bounced') AS BIGINT) AS bounced,
           CAST(count(*) FILTER (WHERE status = 'expired') AS BIGINT) AS expired,
           CAST(count(*) FILTER (WHERE status = 'undeliverable') AS BIGINT) AS undeliverable,
           CAST(count(*) FILTER (WHERE status <> 'deferred') AS BIGINT) AS finished,
           CAST(count(DISTINCT recipient) AS BIGINT) AS recipients,
           CAST(count(*) FILTER (WHERE counted) AS BIGINT)
               AS counted_errors,
           CAST(count(*) FILTER (WHERE hard AND status IN ('bounced', 'expired', 'undeliverable')) AS BIGINT)
               AS hard_bounces,
           CAST(count(*) FILTER (WHERE status <> 'deferred' AND reason = 'user_unknown') AS BIGINT) AS unknown_user,
           CAST(count(*) FILTER (WHERE reason = 'filtered') AS BIGINT) AS filtered
    FROM bucketed
    GROUP BY GROUPING SETS ((period_start, period_end, carrier), (period_start, period_end))
),

final AS (
    SELECT period_start, period_end, carrier, attempts, delivered, deferred, bounced, expired,
           undeliverable, finished, recipients, counted_errors, hard_bounces, unknown_user,
           filtered,
           CAST(bounced + expired + undeliverable AS DOUBLE) / nullif(finished, 0) AS bounce_rate,
           CAST(unknown_user AS DOUBLE) / nullif(finished, 0) AS unknown_user_rate
    FROM counts
)

SELECT * FROM final ORDER BY period_start, carrier = 'all', carrier
