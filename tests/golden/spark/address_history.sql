/* address_history.sql */
/* What it returns: every delivery attempt to one address, oldest first (the evidence behind a */
/* suppression entry, and `suppression show`). */
/* Reads:   events. Macros: counted_error (sql/macros.sql). */
/* Params:  $address         normalised address (lower-case, no quotes) */
/*          $tz              IANA zone for the local_time column */
/*          $counted_reasons VARCHAR[]: reasons the suppression rule counts (rule.counted_reasons) */
/* Columns: local_time, ts, mta, host, status, reason, scope, hard, carrier, smtp_phase, dsn, */
/*          reply_code, diagnostic, relay, queue_id, event_id, source_file, source_offset, */
/*          counted (whether the rule counts the attempt as an error) */
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
    source_offset,
    (
      status IN ('deferred', 'bounced', 'expired')
      AND scope = 'recipient'
      AND ARRAY_CONTAINS(ARRAY('user_unknown', 'host_unknown', 'mailbox_disabled', 'mailbox_full'), reason)
    ) AS counted
  FROM attempts
)
SELECT
  *
FROM final
ORDER BY
  ts NULLS LAST,
  event_id NULLS LAST
