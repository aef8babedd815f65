-- postfix_block_events.sql — Postfix block reader, step 3: the delivery events of a block.
-- What it returns: one row per delivery line (status sent/deferred/bounced/undeliverable/
--   expired) and one `expired` row per recipient still deferred when qmgr logged
--   `status=expired, returned to sender` (a copy of its last deferral, as QueueParser._expire).
-- Reads:   pf_seq (postfix_block_sequence.sql).
-- Params:  $source_file  the file the block came from
-- Columns: the parsed event columns of pipeline.records (PARSED_COLUMNS) plus _line, the log
--   line the event id is made from. reply_code and smtp_phase are read from the reply text as
--   reply_code_of() and smtp_phase_of() in pipeline/parsers/ do.

WITH tries AS (
    SELECT *, CASE WHEN synthetic THEN carried_mid ELSE cur_mid END AS try_mid
    FROM pf_seq
    WHERE kind = 'D' AND NOT malformed
),
coded AS (
    -- regex captures are slow: each runs only on the texts its cheap match test selects
    SELECT *,
        CASE WHEN coalesce(text, '') = '' THEN NULL
             WHEN regexp_matches(text, '^[2-5]\d\d[ -]') THEN CAST(substr(text, 1, 3) AS SMALLINT)
             WHEN regexp_matches(text, '(?:said|talk to me|greeting|reply=|Remote host said)[:=]? ?[2-5]\d\d[ -]')
                THEN CAST(regexp_extract(text, '(?:said|talk to me|greeting|reply=|Remote host said)[:=]? ?([2-5]\d\d)[ -]', 1) AS SMALLINT)
        END AS reply_code,
        CASE WHEN coalesce(text, '') = '' THEN NULL
             WHEN regexp_matches(text, '\(in reply to .+? command\)\)?[\t\n\x0b\f\r \x1c-\x1f]*$') THEN
                CASE regexp_extract(text, '\(in reply to (.+?) command\)\)?[\t\n\x0b\f\r \x1c-\x1f]*$', 1)
                    WHEN 'RCPT TO' THEN 'rcpt' WHEN 'MAIL FROM' THEN 'mail' WHEN 'end of DATA' THEN 'end_of_data'
                    WHEN 'DATA' THEN 'data' WHEN 'HELO' THEN 'helo' WHEN 'EHLO' THEN 'helo'
                    WHEN 'QUIT' THEN 'quit' WHEN 'RSET' THEN 'quit' WHEN 'XFORWARD' THEN 'helo'
                    WHEN 'XCLIENT' THEN 'helo' WHEN 'STARTTLS' THEN 'helo' WHEN 'BDAT' THEN 'data'
                    WHEN 'LHLO' THEN 'helo' WHEN 'AUTH' THEN 'helo'
                    ELSE lower(regexp_extract(text, '\(in reply to (.+?) command\)\)?[\t\n\x0b\f\r \x1c-\x1f]*$', 1)) END
             WHEN contains(text, 'refused to talk to me')
                  OR contains(text, 'while receiving the initial server greeting') THEN 'connect'
             WHEN regexp_matches(text, '(?i)while sending (?:RCPT TO|MAIL FROM|end of data|DATA|message body)') THEN
                CASE lower(regexp_extract(text, '(?i)while sending (RCPT TO|MAIL FROM|end of data|DATA|message body)', 1))
                    WHEN 'rcpt to' THEN 'rcpt' WHEN 'mail from' THEN 'mail' WHEN 'data' THEN 'data' ELSE 'end_of_data' END
        END AS smtp_phase
    FROM tries
),
expiry_lines AS (
    SELECT * FROM pf_seq WHERE kind = 'F' AND expired AND NOT malformed
),
last_try AS (
    -- per lifetime and epoch, each recipient's latest delivery line (carried ones included),
    -- for the queue ids that have an expiry line in this block
    SELECT * FROM coded
    WHERE qid IN (SELECT qid FROM expiry_lines)
    QUALIFY row_number() OVER (PARTITION BY qid, seg, epoch, recipient ORDER BY n DESC) = 1
        AND status = 'deferred'
),
events AS (
    SELECT ts, host, qid AS queue_id, cur_mid AS message_id, cur_sender AS sender, recipient,
        relay, status, dsn, reply_code, smtp_phase, text AS diagnostic, off AS source_offset,
        line AS _line
    FROM coded
    WHERE NOT synthetic
    UNION ALL
    SELECT e.ts, e.host, e.qid, coalesce(e.cur_mid, d.try_mid), e.cur_sender, d.recipient,
        d.relay, 'expired', d.dsn, d.reply_code, d.smtp_phase, d.text, e.off, e.line
    FROM expiry_lines e JOIN last_try d ON d.qid = e.qid AND d.seg = e.seg AND d.epoch = e.epoch
)
SELECT ts, 'postfix' AS mta, host, queue_id, message_id, sender, recipient,
    CASE WHEN contains(recipient, '@') THEN split_part(recipient, '@', -1) ELSE '' END AS recipient_domain,
    nullif(relay, 'none') AS relay, status, dsn, reply_code, smtp_phase, diagnostic,
    $source_file AS source_file, source_offset, _line
FROM events
