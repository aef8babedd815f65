/* counted_errors.sql */
/* What it returns: every counted error up to $as_of, one row per event, with its local day: */
/* the first step of the suppression rule, kept as table `counted_errors` (pipeline/suppression/ */
/* rule.py), which sql/suppression_candidates.sql and the guard (sql/guard_bursts.sql, */
/* sql/guard_replies.sql) read, so the events are scanned for their counted errors once per run. */
/* Reads:   attempts (sql/attempts.sql: each delivery attempt once, so a bounce mail restating a */
/*          logged refusal is not a second error, its log row is the evidence; no null-sender row) */
/*          and events (the witnesses that bind a bounce mail). Macros: counted_error, local_day, */
/*          from_bounce_mail, binds_bounce, message_key (sql/macros.sql). */
/* Params:  $tz              IANA zone whose calendar days count (e.g. 'Asia/Tokyo') */
/*          $as_of           TIMESTAMPTZ: only events up to this instant */
/*          $counted_reasons VARCHAR[]: reasons that count (scope must also be 'recipient') */
/*          $sender_mta      the `mta` of the send daemon's rows (pipeline.sender.events.MTA) */
/*          $window_days     the rule's look-back: how far before a bounce mail without a returned */
/*                           Message-ID an attempt to the address binds it (binds_bounce) */
/* Columns: address, ts, event_id, carrier, reason, dsn, reply_code, diagnostic, day (DATE: */
/*          the local day of ts in $tz), status, message (the Message-ID without its angle */
/*          brackets: Postfix logs it without, a bounce mail and the sender with; NULL when */
/*          none; NULL for the send daemon's attempts, which it renders anew, with a new */
/*          Message-ID, at every retry: their queue id `job.row` names the delivery), host, */
/*          queue_id: what tells the attempts of one delivery apart (sql/suppression_candidates.sql) */
/* Bounce mails: anyone can mail the bounce address. A bounce mail's row (from_bounce_mail) is a */
/* counted error only when bound to mail we sent (binds_bounce): another witness (the daemon's */
/* own attempt, an MTA log line) to the same address carries its returned Message-ID, or, when */
/* it returns none, attempted the address in the look-back. Unbound rows stay in the store */
/* (`suppression show` marks them) but are no counted errors. */
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
    (
      CAST(FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS DATE)
    ) AS day,
    status,
    CASE
      WHEN mta = 'mailhygiene' AND NOT NULLIF(queue_id, '') IS NULL
      THEN NULL
      ELSE (
        CASE
          WHEN LEFT(message_id, 1) IN ('<', '>', ' ') OR RIGHT(message_id, 1) IN ('<', '>', ' ')
          THEN NULLIF(TRIM('<> ' FROM message_id), '')
          ELSE NULLIF(message_id, '')
        END
      )
    END AS message,
    host,
    NULLIF(queue_id, '') AS queue_id,
    (
      COALESCE(source_file LIKE 'mailhygiene-bounces:%', FALSE)
    ) AS bounce_mail
  FROM attempts
  WHERE
    (
      status IN ('deferred', 'bounced', 'expired')
      AND scope = 'recipient'
      AND ARRAY_CONTAINS(ARRAY('user_unknown', 'host_unknown', 'mailbox_disabled', 'mailbox_full'), reason)
    )
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
), bounce_mails AS (
  SELECT
    event_id,
    address,
    message,
    day
  FROM counted
  WHERE
    bounce_mail
), witnesses AS (
  /* the other rows to the addresses bounce mails name (none read when there is no bounce mail) */
  SELECT
    recipient AS address,
    (
      CASE
        WHEN LEFT(message_id, 1) IN ('<', '>', ' ') OR RIGHT(message_id, 1) IN ('<', '>', ' ')
        THEN NULLIF(TRIM('<> ' FROM message_id), '')
        ELSE NULLIF(message_id, '')
      END
    ) AS message,
    (
      CAST(FROM_UTC_TIMESTAMP(ts, 'Asia/Tokyo') AS DATE)
    ) AS day
  FROM events
  WHERE
    recipient IN (
      SELECT
        address
      FROM bounce_mails
    )
    AND NOT (
      COALESCE(source_file LIKE 'mailhygiene-bounces:%', FALSE)
    )
    AND sender IS DISTINCT FROM '' /* a DSN of ours to the address is no mail of ours to it */
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
), bound AS (
  SELECT DISTINCT
    b.event_id
  FROM bounce_mails AS b
  JOIN witnesses AS w
    ON w.address = b.address
    AND (
      COALESCE(w.message = b.message, FALSE)
      OR (
        w.day >= b.day - (
          7 - 1
        ) AND w.day <= b.day + 1
      )
    )
)
SELECT
  address,
  ts,
  event_id,
  carrier,
  reason,
  dsn,
  reply_code,
  diagnostic,
  day,
  status,
  message,
  host,
  queue_id
FROM counted
WHERE
  NOT bounce_mail OR event_id IN (
    SELECT
      event_id
    FROM bound
  )
