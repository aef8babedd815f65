/* guard_bursts.sql */
/* What it returns: the carrier-hours and carrier-days in which the new entries' counted errors */
/* look like a carrier refusing us rather than dead addresses (the suppression guard), plus one */
/* `summary` row. A carrier that refuses our usual addresses for an hour hides in its day's */
/* figures: the hour is the grain that sees it, and an address's own history tells a dead */
/* mailbox (no delivery for a while) from a refusal of one that took our mail a day before. */
/* Reads:   attempts (sql/attempts.sql: each delivery attempt once, as the counted errors are: */
/*          in relay mode a refusal logged by Postfix and restated by its bounce mail is one */
/*          attempt and one error, not two of each), counted_errors (the counted errors up to */
/*          $as_of: the rows of sql/counted_errors.sql, kept by the rule's run), new_entries (the rule's new */
/*          entries: the columns of suppression_candidates.sql, error_times and last_sent among */
/*          them). Macros: partition_in_period (sql/macros.sql). */
/* Params:  $tz, $as_of (as in counted_errors.sql) */
/*          $since            TIMESTAMPTZ: first instant of the evaluated period */
/*          $hour_min_errors  a carrier-hour is looked at from this many counted errors ... */
/*          $hour_rate        ... and is a burst when this share of its attempts are counted errors */
/*          $recent_hours     an error within this many hours after the address's latest delivery */
/*                            is a refusal of a usual address ... */
/*          $recent_rate      ... and a carrier-hour with $hour_min_errors such refusals making */
/*                            this share of its attempts is a refusal of our usual addresses */
/*          $block_min_errors, $block_rate  the same as $hour_min_errors/$hour_rate per local day */
/* Columns: kind ('hour' | 'day' | 'summary'), carrier, period_start (local TIMESTAMP: the hour */
/*          or the day), attempts, counted_errors, new_errors (the new entries' errors in it), */
/*          usual_refusals (new entries' errors within $recent_hours after a delivery), */
/*          error_rate, burst, usual, last_quarter (summary only: the start of the newest */
/*          quarter hour with attempts in the period, where guard.py counts a lower bound of the */
/*          active addresses cheaply) */
/* Buckets: one pass over the attempts counts the attempts per carrier and 15 minutes of UTC */
/* (every zone's offset is a whole number of quarter hours); the counted errors come from */
/* counted_errors (no second look at the events' status, scope and reason); the buckets are */
/* summed per local hour and day. Only periods holding errors of the new entries are returned; */
/* their replies: sql/guard_replies.sql (run only when some are). */
WITH attempt_quarters AS (
  SELECT
    COALESCE(carrier, 'unknown') AS carrier,
    UNIX_MICROS(ts) DIV 900000000 AS quarter,
    CAST(COUNT(*) AS BIGINT) AS attempts
  FROM attempts
  WHERE
    (
      (
        CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP) IS NULL
        OR date >= DATE_FORMAT(CAST(CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP) AS DATE) - 1, 'yyyy-MM-dd')
      )
      AND (
        CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP) IS NULL
        OR date <= DATE_FORMAT(CAST(CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP) AS DATE) + 1, 'yyyy-MM-dd')
      )
    )
    AND ts >= CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP)
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
  GROUP BY
    COALESCE(carrier, 'unknown'),
    UNIX_MICROS(ts) DIV 900000000
), errors AS (
  SELECT
    COALESCE(carrier, 'unknown') AS carrier,
    UNIX_MICROS(ts) DIV 900000000 AS quarter,
    CAST(COUNT(*) AS BIGINT) AS counted_errors
  FROM counted_errors
  WHERE
    ts >= CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP)
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
  GROUP BY
    COALESCE(carrier, 'unknown'),
    UNIX_MICROS(ts) DIV 900000000
), quarters AS (
  /* every counted error is an attempt of the same carrier and quarter */
  SELECT
    a.carrier,
    a.quarter,
    a.attempts,
    COALESCE(e.counted_errors, 0) AS counted_errors
  FROM attempt_quarters AS a
  LEFT JOIN errors AS e
    ON e.carrier = a.carrier AND e.quarter = a.quarter
), local_hours AS (
  SELECT
    quarter,
    DATE_TRUNC(
      'HOUR',
      FROM_UTC_TIMESTAMP(TIMESTAMP_MICROS(CAST(ROUND(quarter * 900 * 1000000) AS BIGINT)), 'Asia/Tokyo')
    ) AS hour
  FROM (
    SELECT DISTINCT
      quarter
    FROM quarters
  ) AS q
), new_errors AS (
  SELECT
    COALESCE(carrier, 'unknown') AS carrier,
    UNIX_MICROS(error_ts) DIV 900000000 AS quarter,
    NOT last_sent IS NULL
    AND UNIX_MICROS(error_ts) / 1000000 - UNIX_MICROS(last_sent) / 1000000 <= 48.0 * 3600 AS usual
  FROM (
    SELECT
      carrier,
      last_sent,
      EXPLODE(error_times) AS error_ts
    FROM new_entries
  ) AS e
  WHERE
    error_ts >= CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP)
), per_quarter AS (
  SELECT
    q.carrier,
    h.hour,
    q.attempts,
    q.counted_errors,
    COALESCE(e.new_errors, 0) AS new_errors,
    COALESCE(e.usual_refusals, 0) AS usual_refusals
  FROM quarters AS q
  JOIN local_hours AS h
    USING (quarter)
  LEFT JOIN (
    SELECT
      carrier,
      quarter,
      CAST(COUNT(*) AS BIGINT) AS new_errors,
      CAST(COUNT(*) FILTER(WHERE
        usual) AS BIGINT) AS usual_refusals
    FROM new_errors
    GROUP BY
      carrier,
      quarter
  ) AS e
    ON e.carrier = q.carrier AND e.quarter = q.quarter
), per_hour AS (
  SELECT
    'hour' AS kind,
    carrier,
    hour AS period_start,
    CAST(SUM(attempts) AS BIGINT) AS attempts,
    CAST(SUM(counted_errors) AS BIGINT) AS counted_errors,
    CAST(SUM(new_errors) AS BIGINT) AS new_errors,
    CAST(SUM(usual_refusals) AS BIGINT) AS usual_refusals
  FROM per_quarter
  GROUP BY
    carrier,
    hour
), per_day AS (
  SELECT
    'day' AS kind,
    carrier,
    CAST(CAST(hour AS DATE) AS TIMESTAMP_NTZ) AS period_start,
    CAST(SUM(attempts) AS BIGINT) AS attempts,
    CAST(SUM(counted_errors) AS BIGINT) AS counted_errors,
    CAST(SUM(new_errors) AS BIGINT) AS new_errors,
    CAST(SUM(usual_refusals) AS BIGINT) AS usual_refusals
  FROM per_quarter
  GROUP BY
    carrier,
    CAST(CAST(hour AS DATE) AS TIMESTAMP_NTZ)
), judged AS (
  SELECT
    *,
    counted_errors >= 20 AND counted_errors >= 0.5 * attempts AS burst,
    usual_refusals >= 20 AND usual_refusals >= 0.02 * attempts AS usual
  FROM per_hour
  WHERE
    new_errors > 0
  UNION ALL
  SELECT
    *,
    counted_errors >= 20 AND counted_errors >= 0.5 * attempts AS burst,
    FALSE AS usual
  FROM per_day
  WHERE
    new_errors > 0
), flagged AS (
  SELECT
    *
  FROM judged
  WHERE
    burst OR usual
), final AS (
  SELECT
    kind,
    carrier,
    period_start,
    attempts,
    counted_errors,
    new_errors,
    usual_refusals,
    ROUND(CAST(counted_errors AS DOUBLE) / attempts, 4) AS error_rate,
    burst,
    usual,
    CAST(NULL AS TIMESTAMP) AS last_quarter
  FROM flagged
  UNION ALL
  SELECT
    'summary',
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    (
      SELECT
        TIMESTAMP_MICROS(CAST(ROUND(MAX(quarter) * 900 * 1000000) AS BIGINT))
      FROM quarters
    )
)
SELECT
  *
FROM final
ORDER BY
  kind = 'summary' NULLS LAST,
  period_start NULLS LAST,
  kind DESC,
  carrier NULLS LAST
