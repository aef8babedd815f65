/* filtered_addresses.sql */
/* What it returns: the addresses whose recent refusals were the recipient's own reception */
/* filter (reason 'filtered': docomo/au/SoftBank 指定受信・迷惑メール設定, "receiver refuses mail */
/* from your domain"), for the CRM to ask those customers to allow our sending domain. The */
/* addresses are alive: the rule never counts these refusals, and they are never suppressed. */
/* Left out: addresses on the suppression list, and addresses with a delivery after their */
/* latest filtered refusal (the customer has allowed us since). */
/* Reads:   attempts (sql/attempts.sql: each delivery attempt once: a refusal its bounce mail */
/*          repeats is one refusal, a `sent` that only handed the message on is no delivery), */
/*          bounce_mails (the rows of sql/bounce_mails.sql, kept by the export: a bounce mail's */
/*          refusal counts only when bound to mail we sent, as for the rule; anyone can mail the */
/*          bounce address), suppression (the list: view over suppression/current.parquet) */
/* Params:  $since, $as_of  TIMESTAMPTZ: refusals in (since, as_of] count */
/* Columns: address, carrier, refusals (filtered refusals in the period), first_refusal, */
/*          last_refusal, last_reply (the diagnostic of the latest refusal; ties on ts broken by */
/*          event_id), last_delivery (latest successful delivery before it, or NULL) */
WITH refusals AS (
  SELECT
    recipient AS address,
    carrier,
    ts,
    event_id,
    diagnostic
  FROM attempts
  WHERE
    reason = 'filtered'
    AND ts > CAST('2026-11-01 15:00:00.000000' AS TIMESTAMP)
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
    AND NOT event_id IN (
      SELECT
        event_id
      FROM bounce_mails
      WHERE
        NOT bound
    )
), per_address AS (
  SELECT
    address,
    CAST(COUNT(*) AS BIGINT) AS refusals,
    MIN(ts) AS first_refusal,
    MAX(ts) AS last_refusal
  FROM refusals
  GROUP BY
    address
), latest AS (
  SELECT
    address,
    carrier,
    diagnostic,
    ROW_NUMBER() OVER (PARTITION BY address ORDER BY ts DESC, event_id DESC) AS newest
  FROM refusals
), deliveries AS (
  SELECT
    recipient AS address,
    MAX(ts) AS last_delivery
  FROM attempts
  WHERE
    status = 'sent'
    AND ts <= CAST('2026-11-30 14:59:59.999999' AS TIMESTAMP)
    AND recipient IN (
      SELECT
        address
      FROM per_address
    )
  GROUP BY
    recipient
), final AS (
  SELECT
    p.address,
    l.carrier,
    p.refusals,
    p.first_refusal,
    p.last_refusal,
    l.diagnostic AS last_reply,
    d.last_delivery
  FROM per_address AS p
  JOIN latest AS l
    ON l.address = p.address AND l.newest = 1
  LEFT JOIN deliveries AS d
    ON d.address = p.address
  WHERE
    (
      d.last_delivery IS NULL OR d.last_delivery < p.last_refusal
    )
    AND NOT p.address IN (
      SELECT
        address
      FROM suppression
    )
)
SELECT
  *
FROM final
ORDER BY
  carrier NULLS LAST,
  address NULLS LAST
