/* not_attempts.sql */
/* What it returns: the event rows that are no delivery attempt of their own, one row each (a few; */
/* in direct mode only the null-sender rows): THE definition of "the same attempt" that the views */
/* `witnessed_events` and `attempts` (sql/witnessed_events.sql, sql/attempts.sql) apply, on DuckDB */
/* (pipeline/store/warehouse.py) and Spark (lake.spark). The event store keeps every witness's */
/* row; which of them count is decided here, in the reading, once. */
/* Reads:   events (every stored row, on purpose: this file decides which rows are attempts, so it */
/*          is the one query besides sql/witnessed_events.sql and the binding's witnesses in */
/*          sql/bounce_mails.sql that reads `events`; every count reads `attempts`). */
/*          Macros: message_key, failed_after, from_bounce_mail (sql/macros.sql). */
/* Params:  none */
/* Columns: event_id, not_attempt: */
/*   'restated'  a row of a bounce mail (`mailhygiene bounces`: source_file */
/*               'mailhygiene-bounces:…') whose failure another witness recorded: the same message */
/*               (Message-ID) to the same recipient with the same outcome class (deferred: a delay */
/*               warning; failed: bounced, expired or undeliverable) in an MTA log or in the send */
/*               daemon's own rows. In relay mode Postfix logs the refusal and its DSN comes back */
/*               to the VERP address: one attempt, whose log line (its own time, queue id and relay) */
/*               stands for it. No time window: the Message-ID names the message, and a bounce's time */
/*               (its Last-Attempt-Date or Date) comes from another host's clock and zone. */
/*   'hand_off'  a `sent` after which the same message to the same recipient failed (failed_after, */
/*               as the rule's last_sent): it only handed the message on (a smarthost, an internal */
/*               relay, a carrier's MX that bounced it later); the failure is that attempt's outcome. */
/*   'null_sender' a row of a message whose envelope sender is the null sender `<>` (sender '': */
/*               Postfix's and sendmail's `from=<>`, qmail's `from <>`): a DSN or a delivery */
/*               notice, never the operator's mail. A DSN delivered into our own bounce mailbox */
/*               (relay=mailhygiene-bounces, relay=local) is the transport of a bounce, not an */
/*               attempt; a DSN of ours to someone else, or its bounce, is no campaign delivery. */
/*               An unknown sender (NULL: no `from=` line seen) is not the null sender. */
/*               These rows take no part in the matching below. */
/* Rows without a Message-ID (qmail lines, a carrier's own bounce format that returns no headers) */
/* cannot be matched and stay attempts. */
/* Shape: the failures with a Message-ID (a few % of the rows) are grouped per message and */
/* recipient; the rows of those messages are matched against that small table by one hash join; */
/* the null-sender rows (a few %: about one DSN per bounce) are one filtered scan of `sender`. */
/* A reader that reads the attempts many times keeps these rows once (warehouse.keep_attempt_marks, */
/* the Spark engine): then each read of `attempts` costs a join on event_id, not this. */
WITH failures AS (
  SELECT
    recipient,
    (
      CASE
        WHEN LEFT(message_id, 1) IN ('<', '>', ' ') OR RIGHT(message_id, 1) IN ('<', '>', ' ')
        THEN NULLIF(TRIM('<> ' FROM message_id), '')
        ELSE NULLIF(message_id, '')
      END
    ) AS message,
    status,
    ts,
    source_file,
    source_offset,
    (
      COALESCE(source_file LIKE 'mailhygiene-bounces:%', FALSE)
    ) AS bounce_mail
  FROM events
  WHERE
    status IN ('deferred', 'bounced', 'expired', 'undeliverable')
    AND NOT message_id IS NULL
    AND sender IS DISTINCT FROM ''
), failed_messages AS (
  /* per message and recipient: its latest failure (its log line, for a tie on ts) and */
  /* which outcome classes a witness other than a bounce mail recorded */
  SELECT
    recipient,
    message,
    MAX(ts) AS failed_at,
    MAX_BY(source_file, ts) AS failed_file,
    MAX_BY(source_offset, ts) AS failed_offset,
    BOOL_OR(status = 'deferred' AND NOT bounce_mail) AS deferral_logged,
    BOOL_OR(status <> 'deferred' AND NOT bounce_mail) AS failure_logged
  FROM failures
  GROUP BY
    recipient,
    message
), marked AS (
  SELECT
    e.event_id,
    CASE
      WHEN e.status = 'sent'
      AND (
        COALESCE(
          f.failed_at > e.ts
          OR (
            f.failed_at = e.ts
            AND f.failed_file = e.source_file
            AND f.failed_offset > e.source_offset
          ),
          FALSE
        )
      )
      THEN 'hand_off'
      WHEN (
        COALESCE(e.source_file LIKE 'mailhygiene-bounces:%', FALSE)
      )
      AND CASE WHEN e.status = 'deferred' THEN f.deferral_logged ELSE f.failure_logged END
      THEN 'restated'
    END AS not_attempt
  FROM events AS e
  JOIN failed_messages AS f
    ON f.recipient = e.recipient
    AND f.message = (
      CASE
        WHEN LEFT(e.message_id, 1) IN ('<', '>', ' ')
        OR RIGHT(e.message_id, 1) IN ('<', '>', ' ')
        THEN NULLIF(TRIM('<> ' FROM e.message_id), '')
        ELSE NULLIF(e.message_id, '')
      END
    )
  WHERE
    (
      e.status = 'sent'
      OR (
        COALESCE(e.source_file LIKE 'mailhygiene-bounces:%', FALSE)
      )
    )
    AND e.sender IS DISTINCT FROM ''
)
SELECT
  event_id,
  not_attempt
FROM marked
WHERE
  NOT not_attempt IS NULL
UNION ALL
SELECT
  event_id,
  'null_sender' AS not_attempt
FROM events
WHERE
  sender = ''
