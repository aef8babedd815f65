-- guard_bursts.sql
-- What it returns: the carrier-hours and carrier-days in which the new entries' counted errors
-- look like a carrier refusing us rather than dead addresses (the suppression guard), plus one
-- `summary` row. A carrier that refuses our usual addresses for an hour hides in its day's
-- figures: the hour is the grain that sees it, and an address's own history tells a dead
-- mailbox (no delivery for a while) from a refusal of one that took our mail a day before.
-- Reads:   attempts (sql/attempts.sql: each delivery attempt once, as the counted errors are:
--          in relay mode a refusal logged by Postfix and restated by its bounce mail is one
--          attempt and one error, not two of each), counted_errors (the counted errors up to
--          $as_of: the rows of sql/counted_errors.sql, kept by the rule's run), new_entries (the rule's new
--          entries: the columns of suppression_candidates.sql, error_times and last_sent among
--          them). Macros: partition_in_period (sql/macros.sql).
-- Params:  $tz, $as_of (as in counted_errors.sql)
--          $since            TIMESTAMPTZ: first instant of the evaluated period
--          $hour_min_errors  a carrier-hour is looked at from this many counted errors ...
--          $hour_rate        ... and is a burst when this share of its attempts are counted errors
--          $recent_hours     an error within this many hours after the address's latest delivery
--                            is a refusal of a usual address ...
--          $recent_rate      ... and a carrier-hour with $hour_min_errors such refusals making
--                            this share of its attempts is a refusal of our usual addresses
--          $block_min_errors, $block_rate  the same as $hour_min_errors/$hour_rate per local day
-- Columns: kind ('hour' | 'day' | 'summary'), carrier, period_start (local TIMESTAMP: the hour
--          or the day), attempts, counted_errors, new_errors (the new entries' errors in it),
--          usual_refusals (new entries' errors within $recent_hours after a delivery),
--          error_rate, burst, usual, last_quarter (summary only: the start of the newest
--          quarter hour with attempts in the period, where guard.py counts a lower bound of the
--          active addresses cheaply)
-- Buckets: one pass over the attempts counts the attempts per carrier and 15 minutes of UTC
-- (every zone's offset is a whole number of quarter hours); the counted errors come from
-- counted_errors (no second look at the events' status, scope and reason); the buckets are
-- summed per local hour and day. Only periods holding errors of the new entries are returned;
-- their replies: sql/guard_replies.sql (run only when some are).

WITH attempt_quarters AS (
    SELECT coalesce(carrier, 'unknown') AS carrier, epoch_us(ts) // 900000000 AS quarter,
           CAST(count(*) AS BIGINT) AS attempts
    FROM attempts
    WHERE partition_in_period(date, $since, $as_of)
      AND ts >= $since AND ts <= $as_of
    GROUP BY coalesce(carrier, 'unknown'), epoch_us(ts) // 900000000
),

errors AS (
    SELECT coalesce(carrier, 'unknown') AS carrier, epoch_us(ts) // 900000000 AS quarter,
           CAST(count(*) AS BIGINT) AS counted_errors
    FROM counted_errors
    WHERE ts >= $since AND ts <= $as_of
    GROUP BY coalesce(carrier, 'unknown'), epoch_us(ts) // 900000000
),

quarters AS (
    -- every counted error is an attempt of the same carrier and quarter
    SELECT a.carrier, a.quarter, a.attempts, coalesce(e.counted_errors, 0) AS counted_errors
    FROM attempt_quarters a
    LEFT JOIN errors e ON e.carrier = a.carrier AND e.quarter = a.quarter
),

local_hours AS (
    SELECT quarter, date_trunc('hour', to_timestamp(quarter * 900) AT TIME ZONE $tz) AS hour
    FROM (SELECT DISTINCT quarter FROM quarters) q
),

new_errors AS (
    SELECT coalesce(carrier, 'unknown') AS carrier, epoch_us(error_ts) // 900000000 AS quarter,
           last_sent IS NOT NULL AND epoch(error_ts) - epoch(last_sent) <= $recent_hours * 3600 AS usual
    FROM (SELECT carrier, last_sent, unnest(error_times) AS error_ts FROM new_entries) e
    WHERE error_ts >= $since
),

per_quarter AS (
    SELECT q.carrier, h.hour, q.attempts, q.counted_errors,
           coalesce(e.new_errors, 0) AS new_errors,
           coalesce(e.usual_refusals, 0) AS usual_refusals
    FROM quarters q
    JOIN local_hours h USING (quarter)
    LEFT JOIN (SELECT carrier, quarter, CAST(count(*) AS BIGINT) AS new_errors,
                      CAST(count(*) FILTER (WHERE usual) AS BIGINT) AS usual_refusals
               FROM new_errors GROUP BY carrier, quarter) e
           ON e.carrier = q.carrier AND e.quarter = q.quarter
),

per_hour AS (
    SELECT 'hour' AS kind, carrier, hour AS period_start,
           CAST(sum(attempts) AS BIGINT) AS attempts,
           CAST(sum(counted_errors) AS BIGINT) AS counted_errors,
           CAST(sum(new_errors) AS BIGINT) AS new_errors,
           CAST(sum(usual_refusals) AS BIGINT) AS usual_refusals
    FROM per_quarter
    GROUP BY carrier, hour
),

per_day AS (
    SELECT 'day' AS kind, carrier, CAST(CAST(hour AS DATE) AS TIMESTAMP) AS period_start,
           CAST(sum(attempts) AS BIGINT) AS attempts,
           CAST(sum(counted_errors) AS BIGINT) AS counted_errors,
           CAST(sum(new_errors) AS BIGINT) AS new_errors,
           CAST(sum(usual_refusals) AS BIGINT) AS usual_refusals
    FROM per_quarter
    GROUP BY carrier, CAST(CAST(hour AS DATE) AS TIMESTAMP)
),

judged AS (
    SELECT *,
           counted_errors >= $hour_min_errors AND counted_errors >= $hour_rate * attempts AS burst,
           usual_refusals >= $hour_min_errors AND usual_refusals >= $recent_rate * attempts AS usual
    FROM per_hour
    WHERE new_errors > 0
    UNION ALL
    SELECT *,
           counted_errors >= $block_min_errors AND counted_errors >= $block_rate * attempts AS burst,
           FALSE AS usual
    FROM per_day
    WHERE new_errors > 0
),

flagged AS (
    SELECT * FROM judged WHERE burst OR usual
),

final AS (
    SELECT kind, carrier, period_start, attempts, counted_errors, new_errors, usual_refusals,
           round(CAST(counted_errors AS DOUBLE) / attempts, 4) AS error_rate, burst, usual,
           CAST(NULL AS TIMESTAMPTZ) AS last_quarter
    FROM flagged
    UNION ALL
    SELECT 'summary', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           (SELECT to_timestamp(max(quarter) * 900) FROM quarters)
)

SELECT * FROM final ORDER BY kind = 'summary', period_start, kind DESC, carrier
