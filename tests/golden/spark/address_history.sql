/* address_history.sql */
/* What it returns: every delivery attempt to one address, oldest first (the evidence behind a */
/* suppression entry, and `suppression show`). */
/* Reads:   events. Macros: counted_error, failed_after, from_bounce_mail, binds_bounce, */
/*          local_day (sql/macros.sql). */
/* Params:  $address         normalised address (lower-case, no quotes) */
/*          $tz              IANA zone for the local_time column */
/*          $counted_reasons VARCHAR[]: reasons the suppression rule counts (rule.counted_reasons) */
/*          $window_days     the rule's look-back (rule.window_days), $sender_mta: as in */
/*                           sql/counted_errors.sql, whose test of a bounce mail's binding this repeats */
/* Columns: local_time, ts, mta, host, status, reason, scope, hard, carrier, smtp_phase, dsn, */
/*          reply_code, diagnostic, relay, queue_id, event_id, source_file, source_offset, */
/*          counted (whether the rule counts the attempt as an error: a bounce mail's row only */
/*          when bound), bound (a bounce mail's row: whether it is bound to mail we sent to the */
/*          address, binds_bounce; NULL for every other row), hand_off (a `sent` */
/*          after which the same message to the address failed: a hop to a content filter, an */
/*          internal relay or a smarthost, which the rule does not take as a delivery; the same */
/*          test as sql/suppression_candidates.sql's last_sent, held to it by */
/*          tests/test_suppression_rule.py) */
WITH attempts AS (
  SELECT
    *,
    NULLIF(TRIM('<> ' FROM message_id), '') AS message,
    (
      CAST(FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS DATE)
    ) AS day,
    (
      COALESCE(mta = 'mailhygiene' AND NULLIF(queue_id, '') IS NULL, FALSE)
    ) AS bounce_mail
  FROM events
  WHERE
    recipient = 'taro.dead@docomo.ne.jp'
), bound AS (
  SELECT DISTINCT
    b.event_id
  FROM attempts AS b
  JOIN attempts AS w
    ON b.bounce_mail
    AND NOT w.bounce_mail
    AND (
      COALESCE(w.message = b.message, FALSE)
      OR (
        w.day >= b.day - (
          7 - 1
        ) AND w.day <= b.day + 1
      )
    )
), failed_later AS (
  SELECT
    message,
    MAX(ts) AS failed_at,
    MAX_BY(source_file, ts) AS failed_file,
    MAX_BY(source_offset, ts) AS failed_offset
  FROM attempts
  WHERE
    status <> 'sent' AND NOT message IS NULL
  GROUP BY
    message
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
    AND (
      NOT a.bounce_mail OR NOT b.event_id IS NULL
    ) AS counted,
    CASE WHEN a.bounce_mail THEN NOT b.event_id IS NULL END AS bound,
    a.status = 'sent'
    AND (
      COALESCE(
        f.failed_at > a.ts
        OR (
          f.failed_at = a.ts
          AND f.failed_file = a.source_file
          AND f.failed_offset > a.source_offset
        ),
        FALSE
      )
    ) AS hand_off
  FROM attempts AS a
  LEFT JOIN failed_later AS f
    USING (message)
  LEFT JOIN bound AS b
    ON b.event_id = a.event_id
)
SELECT
  *
FROM final
ORDER BY
  ts NULLS LAST,
  event_id NULLS LAST
