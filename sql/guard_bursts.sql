-- guard_bursts.sql
-- What it returns: the carrier-hours and carrier-days in which the new entries' counted errors
-- look like a carrier refusing us rather than dead addresses (the suppression guard), plus one
-- `summary` row. A carrier that refuses our usual addresses for an hour hides in its day's
-- figures: the hour is the grain that sees it, and an address's own history tells a dead
-- mailbox (no delivery for a while) from a refusal of one that took our mail a day before.
-- Reads:   events, new_entries (the rule's new entries: address, first_error, last_sent; the
--          columns of suppression_candidates.sql). Macros: counted_error (sql/macros.sql).
-- Params:  $tz, $as_of, $counted_reasons (as in suppression_candidates.sql)
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
--          error_rate, burst, usual, top_replies (the three most common replies of its counted
--          errors, addresses masked, with counts), counted_addresses (summary only: distinct
--          addresses with counted errors in the period, a lower bound of the active ones)
-- Buckets: events are counted per 15 minutes of UTC (every zone's offset is a whole number of
-- quarter hours), and the buckets are summed per local hour and day: one cheap pass.
-- Only periods holding errors of the new entries are returned.

WITH counted AS (
    SELECT recipient AS address, coalesce(carrier, 'unknown') AS carrier, ts, diagnostic,
           CAST(floor(epoch(ts) / 900) AS BIGINT) AS quarter
    FROM events
    WHERE counted_error(status, scope, reason, $counted_reasons)
      AND ts >= $since AND ts <= $as_of
),

attempt_quarters AS (
    SELECT coalesce(carrier, 'unknown') AS carrier, CAST(floor(epoch(ts) / 900) AS BIGINT) AS quarter,
           CAST(count(*) AS BIGINT) AS attempts
    FROM events
    WHERE ts >= $since AND ts <= $as_of
    GROUP BY coalesce(carrier, 'unknown'), CAST(floor(epoch(ts) / 900) AS BIGINT)
),

local_hours AS (
    SELECT quarter, date_trunc('hour', to_timestamp(quarter * 900) AT TIME ZONE $tz) AS hour
    FROM (SELECT DISTINCT quarter FROM attempt_quarters) q
),

new_errors AS (
    SELECT c.carrier, c.quarter,
           n.last_sent IS NOT NULL AND epoch(c.ts) - epoch(n.last_sent) <= $recent_hours * 3600 AS usual
    FROM counted c
    JOIN new_entries n ON n.address = c.address AND c.ts >= n.first_error
),

per_quarter AS (
    SELECT a.carrier, h.hour, a.attempts,
           coalesce(c.counted_errors, 0) AS counted_errors,
           coalesce(e.new_errors, 0) AS new_errors,
           coalesce(e.usual_refusals, 0) AS usual_refusals
    FROM attempt_quarters a
    JOIN local_hours h USING (quarter)
    LEFT JOIN (SELECT carrier, quarter, CAST(count(*) AS BIGINT) AS counted_errors
               FROM counted GROUP BY carrier, quarter) c
           ON c.carrier = a.carrier AND c.quarter = a.quarter
    LEFT JOIN (SELECT carrier, quarter, CAST(count(*) AS BIGINT) AS new_errors,
                      CAST(count(*) FILTER (WHERE usual) AS BIGINT) AS usual_refusals
               FROM new_errors GROUP BY carrier, quarter) e
           ON e.carrier = a.carrier AND e.quarter = a.quarter
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

replies AS (
    SELECT f.kind, f.carrier, f.period_start,
           regexp_replace(coalesce(c.diagnostic, ''), '<?[^\s<>()]+@[^\s<>()]+>?', '<address>', 'g') AS reply,
           CAST(count(*) AS BIGINT) AS n
    FROM counted c
    JOIN local_hours h USING (quarter)
    JOIN flagged f
      ON f.carrier = c.carrier
     AND ((f.kind = 'hour' AND h.hour = f.period_start)
          OR (f.kind = 'day' AND CAST(h.hour AS DATE) = CAST(f.period_start AS DATE)))
    GROUP BY f.kind, f.carrier, f.period_start,
             regexp_replace(coalesce(c.diagnostic, ''), '<?[^\s<>()]+@[^\s<>()]+>?', '<address>', 'g')
),

ranked_replies AS (
    SELECT *, row_number() OVER (PARTITION BY kind, carrier, period_start ORDER BY n DESC, reply) AS rank
    FROM replies
),

top_replies AS (
    SELECT kind, carrier, period_start,
           string_agg(CAST(n AS VARCHAR) || ' x ' || reply, ' | ' ORDER BY rank) AS top_replies
    FROM ranked_replies
    WHERE rank <= 3
    GROUP BY kind, carrier, period_start
),

final AS (
    SELECT f.kind, f.carrier, f.period_start, f.attempts, f.counted_errors, f.new_errors,
           f.usual_refusals, round(f.counted_errors / f.attempts, 4) AS error_rate, f.burst,
           f.usual, t.top_replies, CAST(NULL AS BIGINT) AS counted_addresses
    FROM flagged f
    LEFT JOIN top_replies t USING (kind, carrier, period_start)
    UNION ALL
    SELECT 'summary', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           (SELECT CAST(count(DISTINCT address) AS BIGINT) FROM counted)
)

SELECT * FROM final ORDER BY kind = 'summary', period_start, kind DESC, carrier
