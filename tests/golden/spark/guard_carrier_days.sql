/* guard_carrier_days.sql */
/* What it returns: carrier-days whose counted-error rate looks like the carrier blocking us */
/* rather than dead addresses (the suppression guard's second test). */
/* Reads:   events */
/* Params:  $tz, $as_of, $counted_reasons (as in suppression_candidates.sql) */
/*          $since            TIMESTAMPTZ: first instant of the evaluated period */
/*          $block_rate       a carrier-day is suspicious at this counted-error rate or above ... */
/*          $block_min_errors ... with at least this many counted errors */
/* Columns: carrier, day, attempts, counted_errors, error_rate, top_replies (most common */
/*          diagnostics of the counted errors, with counts) */
WITH attempts AS (
  SELECT
    carrier,
    CAST(FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS DATE) AS day,
    status,
    scope,
    reason,
    diagnostic
  FROM events
  WHERE
    ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
    AND ts >= CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP)
), per_day AS (
  SELECT
    carrier,
    day,
    COUNT(*) AS attempts,
    COUNT(*) FILTER(WHERE
      status IN ('deferred', 'bounced', 'expired')
      AND scope = 'recipient'
      AND ARRAY_CONTAINS(ARRAY('user_unknown', 'host_unknown', 'mailbox_disabled', 'mailbox_full'), reason)) AS counted_errors
  FROM attempts
  GROUP BY
    carrier,
    day
), suspicious AS (
  SELECT
    *,
    counted_errors / attempts AS error_rate
  FROM per_day
  WHERE
    counted_errors >= 20 AND counted_errors / attempts >= 0.5
), replies AS (
  SELECT
    a.carrier,
    a.day,
    REGEXP_REPLACE(a.diagnostic, '[^\\s<>()]+@[^\\s<>()]+', '<address>') AS reply,
    COUNT(*) AS n
  FROM attempts AS a
  JOIN suspicious AS s
    USING (carrier, day)
  WHERE
    a.status IN ('deferred', 'bounced', 'expired')
    AND a.scope = 'recipient'
    AND ARRAY_CONTAINS(
      ARRAY('user_unknown', 'host_unknown', 'mailbox_disabled', 'mailbox_full'),
      a.reason
    )
  GROUP BY ALL
), final AS (
  SELECT
    s.carrier,
    s.day,
    s.attempts,
    s.counted_errors,
    ROUND(s.error_rate, 4) AS error_rate,
    (
      SELECT
        LISTAGG(r.n || ' x ' || r.reply, ' | ') WITHIN GROUP (ORDER BY
          r.n DESC)
      FROM (
        SELECT
          *
        FROM replies AS r2
        WHERE
          r2.carrier = s.carrier AND r2.day = s.day
        ORDER BY
          n DESC
        LIMIT 3
      ) AS r
    ) AS top_replies
  FROM suspicious AS s
)
SELECT
  *
FROM final
ORDER BY
  day NULLS LAST,
  carrier NULLS LAST
