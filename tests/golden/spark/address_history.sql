/* address_history.sql */
/* What it returns: every delivery attempt to one address, oldest first (the evidence behind a */
/* suppression entry, and `suppression show`). */
/* Reads:   events */
/* Params:  $address  normalised address (lower-case, no quotes) */
/*          $tz       IANA zone for the local_time column */
/* Columns: local_time, ts, mta, host, status, reason, scope, hard, carrier, smtp_phase, dsn, */
/*          reply_code, diagnostic, relay, queue_id, event_id, source_file, source_offset */
WITH attempts AS (
  SELECT
    *
  FROM events
  WHERE
    recipient = 'taro.dead@docomo.ne.jp'
), final AS (
  SELECT
    FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS local_time,
    ts,
    mta,
    host,
    status,
    reason,
    scope,
    hard,
    carrier,
    smtp_phase,
    dsn,
    reply_code,
    diagnostic,
    relay,
    queue_id,
    event_id,
    source_file,
    source_offset
  FROM attempts
)
SELECT
  *
FROM final
ORDER BY
  ts NULLS LAST,
  event_id NULLS LAST
