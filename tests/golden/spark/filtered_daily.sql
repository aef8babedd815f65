/* filtered_daily.sql */
/* What it returns: reception-filter refusals per carrier and local day: the customer's own */
/* settings (docomo/au/SoftBank 指定受信・迷惑メール設定, a domain or URL filter) refused our */
/* mail. The address is alive: these are never suppressed; the customer can allow our domain */
/* (docs/handset-filters.md). Only days with such a refusal have a row. */
/* Reads:   attempts (sql/attempts.sql: the event store's rows, each delivery attempt once, a */
/*          bounce mail's row only when bound to mail we sent (sql/bound_marks.sql); `date` = */
/*          UTC day of the partition, `ts` TIMESTAMPTZ) */
/* Params:  $tz            IANA zone whose calendar days count (e.g. 'Asia/Tokyo') */
/*          $since, $until DATE or NULL: first and last local day of the report (inclusive) */
/* Columns: day, carrier, filtered, filtered_recipients, carrier_attempts, share_of_attempts, */
/*          top_reply */
/* Definitions (docs/reports.md): */
/*   filtered             attempts with reason 'filtered' (any status but 'sent') (BIGINT) */
/*   filtered_recipients  distinct recipients among them (BIGINT) */
/*   carrier_attempts     all attempts to the carrier that day (BIGINT) */
/*   share_of_attempts    filtered / carrier_attempts (DOUBLE) */
/*   top_reply            the most common reply, addresses (with their <>) masked as <address>; ties: the */
/*                        alphabetically first reply */
WITH stored AS (
  /* partitions are UTC days: a day either side of the local bounds only prunes files */
  SELECT
    COALESCE(carrier, 'unknown') AS carrier,
    recipient,
    status,
    reason,
    diagnostic,
    CAST(FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS DATE) AS day
  FROM attempts
  WHERE
    (
      CAST('2026-11-01' AS DATE) IS NULL
      OR date >= CAST(CAST(CAST(CAST('2026-11-01' AS DATE) AS DATE) - INTERVAL '1' DAY AS DATE) AS STRING)
    )
    AND (
      CAST('2026-11-30' AS DATE) IS NULL
      OR date <= CAST(CAST(CAST(CAST('2026-11-30' AS DATE) AS DATE) + INTERVAL '1' DAY AS DATE) AS STRING)
    )
), in_period AS (
  SELECT
    *
  FROM stored
  WHERE
    (
      CAST('2026-11-01' AS DATE) IS NULL
      OR day >= CAST(CAST('2026-11-01' AS DATE) AS DATE)
    )
    AND (
      CAST('2026-11-30' AS DATE) IS NULL
      OR day <= CAST(CAST('2026-11-30' AS DATE) AS DATE)
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
), refusals AS (
  SELECT
    day,
    carrier,
    recipient,
    REGEXP_REPLACE(COALESCE(diagnostic, ''), '<?[^\\s<>()]+@[^\\s<>()]+>?', '<address>') AS reply
  FROM in_period
  WHERE
    reason = 'filtered' AND status <> 'sent'
), per_day AS (
  SELECT
    day,
    carrier,
    CAST(COUNT(*) AS BIGINT) AS filtered,
    CAST(COUNT(DISTINCT recipient) AS BIGINT) AS filtered_recipients
  FROM refusals
  GROUP BY
    day,
    carrier
), reply_counts AS (
  SELECT
    day,
    carrier,
    reply,
    COUNT(*) AS n
  FROM refusals
  GROUP BY
    day,
    carrier,
    reply
), ranked_replies AS (
  SELECT
    day,
    carrier,
    reply,
    ROW_NUMBER() OVER (PARTITION BY day, carrier ORDER BY n DESC, reply NULLS LAST) AS rank
  FROM reply_counts
), final AS (
  SELECT
    p.day,
    p.carrier,
    p.filtered,
    p.filtered_recipients,
    c.carrier_attempts,
    CAST(p.filtered AS DOUBLE) / c.carrier_attempts AS share_of_attempts,
    r.reply AS top_reply
  FROM per_day AS p
  JOIN carrier_days AS c
    ON c.day = p.day AND c.carrier = p.carrier
  LEFT JOIN ranked_replies AS r
    ON r.day = p.day AND r.carrier = p.carrier AND r.rank = 1
)
SELECT
  *
FROM final
ORDER BY
  day NULLS LAST,
  carrier NULLS LAST
