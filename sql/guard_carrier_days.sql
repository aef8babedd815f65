-- guard_carrier_days.sql
-- What it returns: carrier-days whose counted-error rate looks like the carrier blocking us
-- rather than dead addresses (the suppression guard's second test).
-- Reads:   events
-- Params:  $tz, $as_of, $counted_reasons (as in suppression_candidates.sql)
--          $since            TIMESTAMPTZ: first instant of the evaluated period
--          $block_rate       a carrier-day is suspicious at this counted-error rate or above ...
--          $block_min_errors ... with at least this many counted errors
-- Columns: carrier, day, attempts, counted_errors, error_rate, top_replies (most common
--          diagnostics of the counted errors, with counts)

WITH attempts AS (
    SELECT carrier, CAST(timezone($tz, ts) AS DATE) AS day, status, scope, reason, diagnostic
    FROM events
    WHERE ts <= $as_of AND ts >= $since
),

per_day AS (
    SELECT carrier, day,
           count(*) AS attempts,
           count(*) FILTER (WHERE status IN ('deferred', 'bounced', 'expired')
                              AND scope = 'recipient'
                              AND list_contains($counted_reasons, reason)) AS counted_errors
    FROM attempts
    GROUP BY carrier, day
),

suspicious AS (
    SELECT *, counted_errors / attempts AS error_rate
    FROM per_day
    WHERE counted_errors >= $block_min_errors AND counted_errors / attempts >= $block_rate
),

replies AS (
    SELECT a.carrier, a.day,
           regexp_replace(a.diagnostic, '[^\s<>()]+@[^\s<>()]+', '<address>', 'g') AS reply,
           count(*) AS n
    FROM attempts a JOIN suspicious s USING (carrier, day)
    WHERE a.status IN ('deferred', 'bounced', 'expired') AND a.scope = 'recipient'
      AND list_contains($counted_reasons, a.reason)
    GROUP BY ALL
),

final AS (
    SELECT s.carrier, s.day, s.attempts, s.counted_errors, round(s.error_rate, 4) AS error_rate,
           (SELECT string_agg(r.n || ' x ' || r.reply, ' | ' ORDER BY r.n DESC)
              FROM (SELECT * FROM replies r2 WHERE r2.carrier = s.carrier AND r2.day = s.day
                    ORDER BY n DESC LIMIT 3) r) AS top_replies
    FROM suspicious s
)

SELECT * FROM final ORDER BY day, carrier
