/* guard_replies.sql */
/* What it returns: the three most common replies of the counted errors in each carrier-period */
/* the guard flagged (sql/guard_bursts.sql), addresses masked, with counts: what the operator */
/* reads to tell a block from dead addresses. */
/* Reads:   counted_errors (the rows of sql/counted_errors.sql, kept by the rule's run), */
/*          flagged_periods (kind 'hour' | 'day', carrier, period_start: local TIMESTAMP, */
/*          period_end: local TIMESTAMP, exclusive) */
/* Params:  $tz (as in counted_errors.sql) */
/*          $since, $until  TIMESTAMPTZ: the instants the flagged periods span */
/* Columns: kind, carrier, period_start, top_replies ("<n> x <reply> | ...", most common first, */
/*          ties in reply order) */
WITH counted AS (
  SELECT
    COALESCE(carrier, 'unknown') AS carrier,
    FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS local_ts,
    REGEXP_REPLACE(COALESCE(diagnostic, ''), '<?[^\\s<>()]+@[^\\s<>()]+>?', '<address>') AS reply
  FROM counted_errors
  WHERE
    ts >= CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP)
    AND ts < CAST('2026-11-30 15:00:00.000000' AS TIMESTAMP)
), replies AS (
  SELECT
    f.kind,
    f.carrier,
    f.period_start,
    c.reply,
    CAST(COUNT(*) AS BIGINT) AS n
  FROM counted AS c
  JOIN flagged_periods AS f
    ON f.carrier = c.carrier
    AND c.local_ts >= f.period_start
    AND c.local_ts < f.period_end
  GROUP BY
    f.kind,
    f.carrier,
    f.period_start,
    c.reply
), ranked AS (
  SELECT
    *,
    ROW_NUMBER() OVER (PARTITION BY kind, carrier, period_start ORDER BY n DESC, reply NULLS LAST) AS rank
  FROM replies
), final AS (
  SELECT
    kind,
    carrier,
    period_start,
    LISTAGG(CAST(n AS STRING) || ' x ' || reply, ' | ') WITHIN GROUP (ORDER BY
      rank NULLS LAST) AS top_replies
  FROM ranked
  WHERE
    rank <= 3
  GROUP BY
    kind,
    carrier,
    period_start
)
SELECT
  *
FROM final
ORDER BY
  period_start NULLS LAST,
  kind DESC,
  carrier NULLS LAST
