/* counted_errors.sql */
/* What it returns: every counted error up to $as_of, one row per event, with its local day: */
/* the first step of the suppression rule, kept as table `counted_errors` (pipeline/suppression/ */
/* rule.py), which sql/suppression_candidates.sql and the guard (sql/guard_bursts.sql, */
/* sql/guard_replies.sql) read, so the events are scanned for their counted errors once per run. */
/* Reads:   attempts (sql/attempts.sql: each delivery attempt once, so a bounce mail restating a */
/*          logged refusal is not a second error, its log row is the evidence; no null-sender row). */
/*          Macros: counted_error, local_day (sql/macros.sql). */
/* Params:  $tz              IANA zone whose calendar days count (e.g. 'Asia/Tokyo') */
/*          $as_of           TIMESTAMPTZ: only events up to this instant */
/*          $counted_reasons VARCHAR[]: reasons that count (scope must also be 'recipient') */
/*          $sender_mta      the `mta` of the send daemon's rows (pipeline.sender.events.MTA) */
/* Columns: address, ts, event_id, carrier, reason, dsn, reply_code, diagnostic, day (DATE: */
/*          the local day of ts in $tz), status, message (the Message-ID without its angle */
/*          brackets: Postfix logs it without, a bounce mail and the sender with; NULL when */
/*          none; NULL for the send daemon's attempts, which it renders anew, with a new */
/*          Message-ID, at every retry: their queue id `job.row` names the delivery), host, */
/*          queue_id: what tells the attempts of one delivery apart (sql/suppression_candidates.sql) */
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
      ELSE NULLIF(TRIM('<> ' FROM message_id), '')
    END AS message,
    host,
    NULLIF(queue_id, '') AS queue_id
  FROM attempts
  WHERE
    (
      status IN ('deferred', 'bounced', 'expired')
      AND scope = 'recipient'
      AND ARRAY_CONTAINS(ARRAY('user_unknown', 'host_unknown', 'mailbox_disabled', 'mailbox_full'), reason)
    )
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
)
SELECT
  *
FROM counted
