/* address_history.sql */
/* What it returns: every stored row of one address, oldest first: each witness of each delivery */
/* attempt (the evidence behind a suppression entry, and `suppression show`). */
/* Reads:   witnessed_events (sql/witnessed_events.sql: every stored row, marked when it is no */
/*          attempt of its own). Macros: counted_error, local_day, from_bounce_mail, binds_bounce, */
/*          message_key (sql/macros.sql). */
/* Params:  $address         normalised address (lower-case, no quotes) */
/*          $tz              IANA zone for the local_time column */
/*          $counted_reasons VARCHAR[]: reasons the suppression rule counts (rule.counted_reasons) */
/*          $window_days     the rule's look-back (rule.window_days): the binding of a bounce mail's */
/*                           row, as sql/counted_errors.sql tests it */
/* Columns: local_time, ts, mta, host, status, reason, scope, hard, carrier, smtp_phase, dsn, */
/*          reply_code, diagnostic, relay, queue_id, event_id, source_file, source_offset, */
/*          counted (whether the rule counts the row as an error: a counted error that is an */
/*          attempt, as sql/counted_errors.sql reads them, and for a bounce mail's row only when */
/*          bound), bound (a bounce mail's row: whether it is bound to mail we sent to the */
/*          address, binds_bounce; NULL for every other row), hand_off (a `sent` */
/*          after which the same message to the address failed: a hop to a content filter, an */
/*          internal relay or a smarthost, which the rule does not take as a delivery; the same */
/*          test as sql/suppression_candidates.sql's last_sent, held to it by */
/*          tests/test_suppression_rule.py), restated (a bounce mail's row repeating a failure */
/*          another witness logged: the same attempt, counted once by the reports and the rule), */
/*          null_sender (a row of null-sender mail, `from=<>`: a DSN, no attempt of ours) */
WITH addressed AS (
  SELECT
    *,
    (
      CASE
        WHEN LEFT(message_id, 1) IN ('<', '>', ' ') OR RIGHT(message_id, 1) IN ('<', '>', ' ')
        THEN NULLIF(TRIM('<> ' FROM message_id), '')
        ELSE NULLIF(message_id, '')
      END
    ) AS message,
    (
      CAST(FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS DATE)
    ) AS day,
    (
      COALESCE(source_file LIKE 'mailhygiene-bounces:%', FALSE)
    ) AS bounce_mail
  FROM witnessed_events
  WHERE
    recipient = 'taro.dead@docomo.ne.jp'
), bound AS (
  SELECT DISTINCT
    b.event_id
  FROM addressed AS b
  JOIN addressed AS w
    ON b.bounce_mail
    AND NOT w.bounce_mail
    AND w.sender IS DISTINCT FROM ''
    AND (
      COALESCE(w.message = b.message, FALSE)
      OR (
        w.day >= b.day - (
          7 - 1
        ) AND w.day <= b.day + 1
      )
    )
), final AS (
  SELECT
    FROM_UTC_TIMESTAMP(a.ts, 'Asia/Tokyo') AS local_time,
    a.ts,
    a.mta,
    a.host,
    a.status,
    a.reason,
    a.scope,
    a.hard,
    a.carrier,
    a.smtp_phase,
    a.dsn,
    a.reply_code,
    a.diagnostic,
    a.relay,
    a.queue_id,
    a.event_id,
    a.source_file,
    a.source_offset,
    (
      a.status IN ('deferred', 'bounced', 'expired')
      AND a.scope = 'recipient'
      AND ARRAY_CONTAINS(
        ARRAY('user_unknown', 'host_unknown', 'mailbox_disabled', 'mailbox_full'),
        a.reason
      )
    )
    AND a.not_attempt IS NULL
    AND (
      NOT a.bounce_mail OR NOT b.event_id IS NULL
    ) AS counted,
    CASE WHEN a.bounce_mail THEN NOT b.event_id IS NULL END AS bound,
    COALESCE(a.not_attempt = 'hand_off', FALSE) AS hand_off,
    COALESCE(a.not_attempt = 'restated', FALSE) AS restated,
    COALESCE(a.not_attempt = 'null_sender', FALSE) AS null_sender
  FROM addressed AS a
  LEFT JOIN bound AS b
    ON b.event_id = a.event_id
)
SELECT
  *
FROM final
ORDER BY
  ts NULLS LAST,
  event_id NULLS LAST
