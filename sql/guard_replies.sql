-- guard_replies.sql
-- What it returns: the three most common replies of the counted errors in each carrier-period
-- the guard flagged (sql/guard_bursts.sql), addresses masked, with counts: what the operator
-- reads to tell a block from dead addresses.
-- Reads:   counted_errors (the rows of sql/counted_errors.sql, kept by the rule's run),
--          flagged_periods (kind 'hour' | 'day', carrier, period_start: local TIMESTAMP,
--          period_end: local TIMESTAMP, exclusive)
-- Params:  $tz (as in counted_errors.sql)
--          $since, $until  TIMESTAMPTZ: the instants the flagged periods span
-- Columns: kind, carrier, period_start, top_replies ("<n> x <reply> | ...", most common first,
--          ties in reply order)

WITH counted AS (
    SELECT coalesce(carrier, 'unknown') AS carrier, ts AT TIME ZONE $tz AS local_ts,
           regexp_replace(coalesce(diagnostic, ''), '<?[^\s<>()]+@[^\s<>()]+>?', '<address>', 'g') AS reply
    FROM counted_errors
    WHERE ts >= $since AND ts < $until
),

replies AS (
    SELECT f.kind, f.carrier, f.period_start, c.reply, CAST(count(*) AS BIGINT) AS n
    FROM counted c
    JOIN flagged_periods f
      ON f.carrier = c.carrier AND c.local_ts >= f.period_start AND c.local_ts < f.period_end
    GROUP BY f.kind, f.carrier, f.period_start, c.reply
),

ranked AS (
    SELECT *, row_number() OVER (PARTITION BY kind, carrier, period_start ORDER BY n DESC, reply) AS rank
    FROM replies
),

final AS (
    SELECT kind, carrier, period_start,
           string_agg(CAST(n AS VARCHAR) || ' x ' || reply, ' | ' ORDER BY rank) AS top_replies
    FROM ranked
    WHERE rank <= 3
    GROUP BY kind, carrier, period_start
)

SELECT * FROM final ORDER BY period_start, kind DESC, carrier
