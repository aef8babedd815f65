/* suppression_candidates.sql */
/* What it returns: every address that the multi-day rule marks as dead, with its evidence. */
/* Reads:   counted_errors (the rows of sql/counted_errors.sql with the same $tz, $as_of and */
/*          $counted_reasons: every counted error up to $as_of with its local day; a table */
/*          the guard reads too), attempts (sql/attempts.sql: the latest delivery attempts), */
/*          suppression_history (view over suppression/history.parquet; empty when there is no */
/*          list yet: its `released` rows are the releases). */
/* Params:  $as_of           TIMESTAMPTZ: only events up to this instant are evaluated */
/*          $min_errors      at least this many counted errors ... */
/*          $min_days        ... on at least this many distinct calendar days ... */
/*          $window_days     ... inside some window of this many consecutive calendar days */
/* Columns: address, carrier, reasons, first_error, last_error, error_count, distinct_days, */
/*          window_start, window_errors, window_days_hit, last_dsn, last_reply_code, */
/*          last_diagnostic, last_sent, event_ids, error_times (TIMESTAMPTZ[]: the errors' times, */
/*          in the order of event_ids; what the guard judges the entries by) */
/* Rule: among the counted errors after the address's latest successful delivery (up to */
/* $as_of: a `sent` attempt of `attempts`; not a `sent` after which the same message (Message-ID) */
/* to the address failed, which was a hop to a content filter, an internal relay or a smarthost, */
/* and not a null-sender DSN: sql/not_attempts.sql, which decides it with the failures up to */
/* $as_of: the rule's run narrows `events` to $as_of first, pipeline/suppression/counted.py) */
/* and after its latest release (whenever it was: a release holds for any later run, */
/* whatever its $as_of, until new errors), some window of $window_days consecutive local days */
/* (of counted_errors' $tz) holds >= $min_errors errors on >= $min_days distinct days. An error */
/* is a failed delivery (`deliveries` below: a message retried for days, its expiry, its other */
/* hops are one error, on the day of its first counted attempt). Windows are anchored on error */
/* days: a qualifying window can always be slid to start on its first error day. */
/* Evidence: carrier, last_dsn, last_reply_code and last_diagnostic come from the latest error */
/* (ties on ts broken by event_id); error_count and distinct_days count the failed deliveries */
/* (what the rule counted) and their days; event_ids lists every counted attempt behind them */
/* (retries included) in (ts, event_id) order. */
/* Shape: the events are scanned twice, once for the counted errors (sql/counted_errors.sql, */
/* a step of its own so that the guard reuses its rows) and once here for the latest */
/* deliveries of the few addresses that could qualify: a delivery or a release only removes */
/* errors, so the addresses that qualify after them are among those whose errors qualify */
/* without them (`could_qualify`), a small set whose deliveries are cheap to look up. */
WITH error_days AS (
  /* attempts, not deliveries: a superset of what qualifies (a delivery is one or more */
  /* attempts, on its first attempt's day), cheap to find, narrowed below */
  SELECT
    address,
    day,
    CAST(COUNT(*) AS BIGINT) AS errors
  FROM counted_errors
  GROUP BY
    address,
    day
), enough_errors AS (
  SELECT
    address
  FROM error_days
  GROUP BY
    address
  HAVING
    SUM(errors) >= 2 AND COUNT(*) >= 2
), could_qualify AS (
  SELECT DISTINCT
    s.address
  FROM error_days AS s
  JOIN error_days AS e
    ON e.address = s.address AND e.day >= s.day AND e.day <= s.day + (
      7 - 1
    )
  WHERE
    s.address IN (
      SELECT
        address
      FROM enough_errors
    )
  GROUP BY
    s.address,
    s.day
  HAVING
    SUM(e.errors) >= 2 AND COUNT(*) >= 2
), last_sent AS (
  /* the latest delivery: a `sent` ATTEMPT (sql/attempts.sql), never any `sent` row: a `sent` */
  /* after which the same message to the address failed only handed it on (a content filter on */
  /* 127.0.0.1:10024, an internal relay, a smarthost whose bounce came later: not_attempt */
  /* 'hand_off', by failed_after), and a null-sender DSN delivered to the address is no mail of */
  /* ours ('null_sender'); neither resets the address's errors */
  SELECT
    recipient AS address,
    MAX(ts) AS last_sent
  FROM attempts
  WHERE
    status = 'sent'
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
    AND recipient IN (
      SELECT
        address
      FROM could_qualify
    )
  GROUP BY
    recipient
), last_release AS (
  SELECT
    address,
    MAX(`at`) AS released_at
  FROM suppression_history
  WHERE
    action = 'released'
  GROUP BY
    address
), deliveries AS (
  /* One delivery, one error: an MTA retries a deferred message for days (Postfix 5 days, */
  /* qmail 7), then logs its expiry; a content filter or an internal relay hands the same */
  /* message on; a bounce mail repeats what the log said. All are attempts of ONE message to */
  /* the address, which failed once. A delivery is the message (its Message-ID) to the */
  /* address, else (no Message-ID: qmail, some sendmail lines) the MTA host's queue id to the */
  /* address, a queue id whose earlier attempt to it ended (bounced or expired) being a new */
  /* delivery (qmail reuses a message's inode number), else the event itself. Its first */
  /* counted attempt stands for it (its time and local day); the others stay evidence. */
  SELECT
    c.*,
    LAG(c.status) OVER delivery IS NULL
    OR (
      c.message IS NULL
      AND NOT c.queue_id IS NULL
      AND LAG(c.status) OVER delivery <> 'deferred'
    ) AS first_of_delivery
  FROM counted_errors AS c
  JOIN could_qualify AS q
    USING (address)
  WINDOW delivery AS (
    PARTITION BY c.address, c.message, CASE WHEN c.message IS NULL THEN c.host END, CASE WHEN c.message IS NULL THEN c.queue_id END, CASE WHEN c.message IS NULL AND c.queue_id IS NULL THEN c.event_id END
    ORDER BY c.ts NULLS LAST, c.event_id NULLS LAST
  )
), after_reset AS (
  SELECT
    c.*,
    s.last_sent
  FROM deliveries AS c
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
), reset_days AS (
  SELECT
    address,
    day,
    CAST(COUNT(*) AS BIGINT) AS errors
  FROM after_reset
  WHERE
    first_of_delivery
  GROUP BY
    address,
    day
), windows AS (
  SELECT
    s.address,
    s.day AS window_start,
    CAST(SUM(e.errors) AS BIGINT) AS window_errors,
    CAST(COUNT(*) AS BIGINT) AS window_days_hit
  FROM reset_days AS s
  JOIN reset_days AS e
    ON e.address = s.address AND e.day >= s.day AND e.day <= s.day + (
      7 - 1
    )
  GROUP BY
    s.address,
    s.day
), first_window AS (
  SELECT
    address,
    window_start,
    window_errors,
    window_days_hit,
    ROW_NUMBER() OVER (PARTITION BY address ORDER BY window_start NULLS LAST) AS nth
  FROM windows
  WHERE
    window_errors >= 2 AND window_days_hit >= 2
), qualifying AS (
  SELECT
    address,
    window_start,
    window_errors,
    window_days_hit
  FROM first_window
  WHERE
    nth = 1
), ranked_errors AS (
  SELECT
    a.*,
    ROW_NUMBER() OVER (PARTITION BY a.address ORDER BY a.ts DESC, a.event_id DESC) AS newest
  FROM after_reset AS a
  WHERE
    a.address IN (
      SELECT
        address
      FROM qualifying
    )
), evidence AS (
  SELECT
    address,
    CASE
      WHEN SIZE(COLLECT_SET(reason)) = 0
      THEN NULL
      ELSE ARRAY_JOIN(ARRAY_SORT(COLLECT_SET(reason)), ',')
    END AS reasons,
    MIN(ts) AS first_error,
    MAX(ts) AS last_error,
    CAST(COUNT(*) FILTER(WHERE
      first_of_delivery) AS BIGINT) AS error_count,
    CAST(COUNT(DISTINCT CASE WHEN first_of_delivery THEN day END) AS BIGINT) AS distinct_days,
    MAX(last_sent) AS last_sent,
    LISTAGG(event_id, ',') WITHIN GROUP (ORDER BY
      ts NULLS LAST,
      event_id NULLS LAST) AS event_ids,
    TRANSFORM(
      ARRAY_SORT(
        COLLECT_LIST(
          STRUCT(ts IS NULL AS n0, ts AS k0, event_id IS NULL AS n1, event_id AS k1, ts AS v)
        )
      ),
      e -> e.v
    ) AS error_times
  FROM ranked_errors
  GROUP BY
    address
), latest AS (
  SELECT
    address,
    carrier,
    dsn AS last_dsn,
    reply_code AS last_reply_code,
    diagnostic AS last_diagnostic
  FROM ranked_errors
  WHERE
    newest = 1
), final AS (
  SELECT
    e.address,
    l.carrier,
    e.reasons,
    e.first_error,
    e.last_error,
    e.error_count,
    e.distinct_days,
    q.window_start,
    q.window_errors,
    q.window_days_hit,
    l.last_dsn,
    l.last_reply_code,
    l.last_diagnostic,
    e.last_sent,
    e.event_ids,
    e.error_times
  FROM evidence AS e
  JOIN qualifying AS q
    USING (address)
  JOIN latest AS l
    USING (address)
)
SELECT
  *
FROM final
ORDER BY
  address NULLS LAST
