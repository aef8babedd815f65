/* sender_problems_daily.sql */
/* What it returns: problems on OUR side per carrier and day (rate limiting, blocks, filtering, */
/* authentication, policy, spam/content verdicts, our sender domain): a separate signal from dead */
/* addresses, never counted by the suppression rule. */
/* Reads:   events, through events_in_period() (sql/macros.sql) */
/* Params:  $tz             IANA zone whose calendar days count */
/*          $since, $until  DATE or NULL: first and last local day (inclusive) */
/* Columns: day, carrier, reason, events, deferred, failed, recipients, carrier_attempts, */
/*          share_of_attempts, top_reply */
/* Definitions: events = attempts with scope 'sender' and this reason; failed = of those, final */
/* failures (bounced, expired, undeliverable); carrier_attempts = all attempts to the carrier */
/* that day; share_of_attempts = events / carrier_attempts; top_reply = the most common */
/* diagnostic (addresses masked as <address>; ties: alphabetical). */
WITH in_period AS (
  SELECT
    COALESCE(carrier, 'unknown') AS carrier,
    recipient,
    status,
    scope,
    COALESCE(reason, 'undefined') AS reason,
    diagnostic,
    day
  FROM (
    SELECT
      *
    FROM (
      SELECT
        *,
        CAST(FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS DATE) AS day
      FROM events
      WHERE
        (
          CAST('2026-11-01' AS DATE) IS NULL
          OR date >= DATE_FORMAT(CAST(CAST('2026-11-01' AS DATE) AS DATE) - 1, 'yyyy-MM-dd')
        )
        AND (
          CAST('2026-11-30' AS DATE) IS NULL
          OR date <= DATE_FORMAT(CAST(CAST('2026-11-30' AS DATE) AS DATE) + 1, 'yyyy-MM-dd')
        )
    )
    WHERE
      (
        CAST('2026-11-01' AS DATE) IS NULL
        OR day >= CAST(CAST('2026-11-01' AS DATE) AS DATE)
      )
      AND (
        CAST('2026-11-30' AS DATE) IS NULL
        OR day <= CAST(CAST('2026-11-30' AS DATE) AS DATE)
      )
  ) AS events_in_period
), carrier_days AS (
  SELECT
    day,
    carrier,
    COUNT(*) AS carrier_attempts
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
    COUNT(*) AS events,
    COUNT(*) FILTER(WHERE
      status = 'deferred') AS deferred,
    COUNT(*) FILTER(WHERE
      status IN ('bounced', 'expired', 'undeliverable')) AS failed,
    COUNT(DISTINCT recipient) AS recipients
  FROM sender_side
  GROUP BY
    day,
    carrier,
    reason
), replies AS (
  SELECT
    day,
    carrier,
    reason,
    REGEXP_REPLACE(COALESCE(diagnostic, ''), '[^\\s<>()]+@[^\\s<>()]+', '<address>') AS reply,
    ROW_NUMBER() OVER (
      PARTITION BY day, carrier, reason
      ORDER BY COUNT(*) DESC, REGEXP_REPLACE(COALESCE(diagnostic, ''), '[^\\s<>()]+@[^\\s<>()]+', '<address>') NULLS LAST
    ) AS rank
  FROM sender_side
  GROUP BY
    day,
    carrier,
    reason,
    reply
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
    p.events / c.carrier_attempts AS share_of_attempts,
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
