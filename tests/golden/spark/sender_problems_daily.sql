/* sender_problems_daily.sql */
/* What it returns: problems on OUR side per carrier and day (rate limiting, blocks, filtering, */
/* authentication, policy, spam/content verdicts, our sender domain): a separate signal from dead */
/* addresses, never counted by the suppression rule. */
/* Reads:   attempts (sql/attempts.sql: each delivery attempt once, a bounce mail's row only */
/*          when bound to mail we sent: sql/bound_marks.sql, kept by the run). Macros: local_day, partition_in_period, day_in_period (sql/macros.sql) */
/* Params:  $tz             IANA zone whose calendar days count */
/*          $since, $until  DATE or NULL: first and last local day (inclusive) */
/* Columns: day, carrier, reason, events, deferred, failed, recipients, carrier_attempts, */
/*          share_of_attempts, top_reply */
/* Definitions: events = attempts with scope 'sender' and this reason; failed = of those, final */
/* failures (bounced, expired, undeliverable); carrier_attempts = all attempts to the carrier */
/* that day; share_of_attempts = events / carrier_attempts; top_reply = the most common */
/* diagnostic (addresses masked as <address>; ties: alphabetical). */
WITH stored AS (
  SELECT
    COALESCE(carrier, 'unknown') AS carrier,
    recipient,
    status,
    scope,
    COALESCE(reason, 'undefined') AS reason,
    diagnostic,
    (
      CAST(FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS DATE)
    ) AS day
  FROM attempts
  WHERE
    (
      (
        CAST('2026-11-01' AS DATE) IS NULL
        OR date >= DATE_FORMAT(CAST(CAST('2026-11-01' AS DATE) AS DATE) - 1, 'yyyy-MM-dd')
      )
      AND (
        CAST('2026-11-30' AS DATE) IS NULL
        OR date <= DATE_FORMAT(CAST(CAST('2026-11-30' AS DATE) AS DATE) + 1, 'yyyy-MM-dd')
      )
    )
), in_period AS (
  SELECT
    *
  FROM stored
  WHERE
    (
      (
        CAST('2026-11-01' AS DATE) IS NULL
        OR day >= CAST(CAST('2026-11-01' AS DATE) AS DATE)
      )
      AND (
        CAST('2026-11-30' AS DATE) IS NULL
        OR day <= CAST(CAST('2026-11-30' AS DATE) AS DATE)
      )
    )
), carrier_days AS (
  SELECT
    day,
    carrier,
    CAST(COUNT(*) AS BIGINT) AS carrier_attempts
  FROM in_period
  GROUP BY
    day,
    carrier
), sender_side AS (
  SELECT
    *
  FROM in_period
  WHERE
    scope = 'sender'
), per_reason AS (
  SELECT
    day,
    carrier,
    reason,
    CAST(COUNT(*) AS BIGINT) AS events,
    CAST(COUNT(*) FILTER(WHERE
      status = 'deferred') AS BIGINT) AS deferred,
    CAST(COUNT(*) FILTER(WHERE
      status IN ('bounced', 'expired', 'undeliverable')) AS BIGINT) AS failed,
    CAST(COUNT(DISTINCT recipient) AS BIGINT) AS recipients
  FROM sender_side
  GROUP BY
    day,
    carrier,
    reason
), masked AS (
  SELECT
    day,
    carrier,
    reason,
    REGEXP_REPLACE(COALESCE(diagnostic, ''), '[^\\s<>()]+@[^\\s<>()]+', '<address>') AS reply
  FROM sender_side
), reply_counts AS (
  SELECT
    day,
    carrier,
    reason,
    reply,
    CAST(COUNT(*) AS BIGINT) AS n
  FROM masked
  GROUP BY
    day,
    carrier,
    reason,
    reply
), replies AS (
  SELECT
    day,
    carrier,
    reason,
    reply,
    ROW_NUMBER() OVER (PARTITION BY day, carrier, reason ORDER BY n DESC, reply NULLS LAST) AS rank
  FROM reply_counts
), final AS (
  SELECT
    p.day,
    p.carrier,
    p.reason,
    p.events,
    p.deferred,
    p.failed,
    p.recipients,
    c.carrier_attempts,
    CAST(p.events AS DOUBLE) / c.carrier_attempts AS share_of_attempts,
    r.reply AS top_reply
  FROM per_reason AS p
  JOIN carrier_days AS c
    USING (day, carrier)
  LEFT JOIN replies AS r
    ON r.day = p.day AND r.carrier = p.carrier AND r.reason = p.reason AND r.rank = 1
)
SELECT
  *
FROM final
ORDER BY
  day NULLS LAST,
  carrier NULLS LAST,
  events DESC,
  reason NULLS LAST
