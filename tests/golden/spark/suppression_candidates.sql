/* suppression_candidates.sql */
/* What it returns: every address that the multi-day rule marks as dead, with its evidence. */
/* Reads:   events (view over the event store), releases (address, released_at: registered by */
/*          pipeline/suppression.py from the suppression history; may be empty). */
/* Params:  $tz              IANA zone whose calendar days count (e.g. 'Asia/Tokyo') */
/*          $as_of           TIMESTAMPTZ: only events up to this instant are evaluated */
/*          $min_errors      at least this many counted errors ... */
/*          $min_days        ... on at least this many distinct calendar days ... */
/*          $window_days     ... inside some window of this many consecutive calendar days */
/*          $counted_reasons VARCHAR[]: reasons that count (scope must also be 'recipient') */
/* Columns: address, carrier, reasons, first_error, last_error, error_count, distinct_days, */
/*          window_start, window_errors, window_days_hit, last_dsn, last_reply_code, */
/*          last_diagnostic, last_sent, event_ids */
/* Rule: among the counted errors after the address's latest successful delivery (and after its */
/* latest release), some window of $window_days consecutive local days holds >= $min_errors */
/* errors on >= $min_days distinct days. Windows are anchored on error days: a qualifying window */
/* can always be slid to start on its first error day. */
WITH counted AS (
  SELECT
    recipient AS address,
    ts,
    event_id,
    carrier,
    reason,
    dsn,
    reply_code,
    diagnostic,
    CAST(FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS DATE) AS day
  FROM events
  WHERE
    status IN ('deferred', 'bounced', 'expired')
    AND scope = 'recipient'
    AND ARRAY_CONTAINS(ARRAY('user_unknown', 'host_unknown', 'mailbox_disabled', 'mailbox_full'), reason)
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
), last_sent AS (
  SELECT
    recipient AS address,
    MAX(ts) AS last_sent
  FROM events
  WHERE
    status = 'sent'
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
    AND recipient IN (
      SELECT
        address
      FROM counted
    )
  GROUP BY
    recipient
), last_release AS (
  SELECT
    address,
    MAX(released_at) AS released_at
  FROM releases
  WHERE
    released_at <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
  GROUP BY
    address
), after_reset AS (
  SELECT
    c.*,
    s.last_sent
  FROM counted AS c
  LEFT JOIN last_sent AS s
    USING (address)
  LEFT JOIN last_release AS r
    USING (address)
  WHERE
    (
      s.last_sent IS NULL OR c.ts > s.last_sent
    )
    AND (
      r.released_at IS NULL OR c.ts > r.released_at
    )
), per_day AS (
  SELECT
    address,
    day,
    COUNT(*) AS errors
  FROM after_reset
  GROUP BY
    address,
    day
), windows AS (
  SELECT
    address,
    day AS window_start,
    SUM(errors) OVER w AS window_errors,
    COUNT(*) OVER w AS window_days_hit
  FROM per_day
  WINDOW w AS (
    PARTITION BY address
    ORDER BY day NULLS LAST
    RANGE BETWEEN CURRENT ROW AND INTERVAL '6' DAY FOLLOWING
  )
), qualifying AS (
  SELECT
    address,
    MIN_BY(window_start, window_start) AS window_start,
    MIN_BY(window_errors, window_start) AS window_errors,
    MIN_BY(window_days_hit, window_start) AS window_days_hit
  FROM windows
  WHERE
    window_errors >= 2 AND window_days_hit >= 2
  GROUP BY
    address
), evidence AS (
  SELECT
    a.address,
    MODE(a.carrier) AS carrier,
    CASE
      WHEN SIZE(COLLECT_SET(a.reason)) = 0
      THEN NULL
      ELSE ARRAY_JOIN(ARRAY_SORT(COLLECT_SET(a.reason)), ',')
    END AS reasons,
    MIN(a.ts) AS first_error,
    MAX(a.ts) AS last_error,
    COUNT(*) AS error_count,
    COUNT(DISTINCT a.day) AS distinct_days,
    MAX_BY(a.dsn, a.ts) AS last_dsn,
    MAX_BY(a.reply_code, a.ts) AS last_reply_code,
    MAX_BY(a.diagnostic, a.ts) AS last_diagnostic,
    MAX(a.last_sent) AS last_sent,
    LISTAGG(a.event_id, ',') WITHIN GROUP (ORDER BY
      a.ts NULLS LAST) AS event_ids
  FROM after_reset AS a
  WHERE
    a.address IN (
      SELECT
        address
      FROM qualifying
    )
  GROUP BY
    a.address
), final AS (
  SELECT
    e.address,
    e.carrier,
    e.reasons,
    e.first_error,
    e.last_error,
    e.error_count,
    e.distinct_days,
    q.window_start,
    q.window_errors,
    q.window_days_hit,
    e.last_dsn,
    e.last_reply_code,
    e.last_diagnostic,
    e.last_sent,
    e.event_ids
  FROM evidence AS e
  JOIN qualifying AS q
    USING (address)
)
SELECT
  *
FROM final
ORDER BY
  address NULLS LAST
