-- postfix_block_parse.sql — Postfix block reader, step 1 of 2: lines -> parsed touches.
-- What it builds: TEMP TABLE pf_parsed, one row per line that touches a queue id:
--   kind D (delivery agent `to=… status=…`), F (qmgr `from=`; expired = `status=expired`),
--   M (cleanup `message-id=`), R (qmgr `removed`). Other lines are not our deliveries.
-- Reads:   pf_block (n BIGINT line number, off BIGINT byte offset, line VARCHAR), registered by
--          pipeline/parsers/postfix_block.py from one ASCII block of the log.
-- Params:  none.
-- Columns: n, off, line (delivery and expiry lines only), kind, expired, host, qid, stamp_key
--          (the stamp to the minute: 'TNov  1 00:00' or 'I2024-08-26 01:33+09:00'; Python turns
--          each distinct key into microseconds), sec_us (seconds and fraction within that minute;
--          NULL when out of range), rest, and for rows whose fields have the
--          common shape (simple = true): recipient, relay, dsn, status, text, sender, message_id.
--          Rows with simple = false are finished in Python by the reference functions
--          (parse_fields, normalise_address) of pipeline/parsers/postfix.py.
-- This is the per-line PostfixParser.feed() in columns: the same prefilter, the same syslog and
-- queue-id patterns (RE2 here; `\s` spelled out as Python's ASCII whitespace), the same field
-- rules. Speed: a regex only tests each line (RE2's DFA is fast); the fields are then cut out
-- with string functions, which is exact because every part of the pattern ends at a character
-- it cannot contain. Extracting with regex captures costs ~1 us a line, several times the rest.
-- Three statements, each over the table the previous one wrote: DuckDB inlines CTEs and
-- would compute a derived column (rest, head, …) again at every use.
-- tests/test_postfix_block.py checks that both paths give identical events.

CREATE OR REPLACE TEMP TABLE pf_cut AS
-- PostfixParser.feed's substring prefilter, then SYSLOG_RE + QID_RE as one test. The first ': '
-- ends `prog[pid]` (stamp and host hold no ': '); host and prog are the header's last two words
-- (cut by position after a plain 'Mmm dd hh:mm:ss ' stamp, else with split_part, which builds a
-- list and is slower); the queue id runs to the next ':'.
SELECT n, off, line, hdr, host, prog, qid, rest,
    CASE split_part(split_part(prog, '[', 1), '/', -1)
        WHEN 'smtp' THEN 'A' WHEN 'lmtp' THEN 'A' WHEN 'local' THEN 'A' WHEN 'virtual' THEN 'A'
        WHEN 'pipe' THEN 'A' WHEN 'error' THEN 'A' WHEN 'retry' THEN 'A' WHEN 'discard' THEN 'A'
        WHEN 'qmgr' THEN 'Q' WHEN 'cleanup' THEN 'C' END AS agent
FROM (
    SELECT n, off, line, hdr, qid, rest,
        CASE WHEN plain THEN substr(hp, 1, strpos(hp, ' ') - 1) ELSE split_part(hdr, ' ', -2) END AS host,
        CASE WHEN plain THEN substr(hp, strpos(hp, ' ') + 1) ELSE split_part(hdr, ' ', -1) END AS prog
    FROM (
        SELECT n, off, line, hdr, plain, CASE WHEN plain THEN substr(hdr, 17) END AS hp,
            substr(msg, 1, strpos(msg, ':') - 1) AS qid, substr(msg, strpos(msg, ':') + 2) AS rest
        FROM (
            SELECT n, off, line, substr(line, 1, p - 1) AS hdr, substr(line, p + 2) AS msg,
                substr(line, 7, 1) = ' ' AND substr(line, 10, 1) = ':' AND substr(line, 16, 1) = ' ' AS plain
            FROM (
                SELECT n, off, line, strpos(line, ': ') AS p
                FROM pf_block
                WHERE contains(line, 'postfix')
                  AND (contains(line, ' to=') OR contains(line, ' from=') OR contains(line, 'message-id=')
                       OR suffix(line, ': removed'))
                  AND regexp_matches(line,
                    '^(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)?'
                    || '|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)'
                    || ' [^\t\n\x0b\f\r \x1c-\x1f]+ postfix[^\t\n\x0b\f\r \x1c-\x1f\[:]*(?:\[\d+\])?: '
                    || '(?:[0-9A-F]{5,12}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{11,20}): ')
            )
        )
    )
);

CREATE OR REPLACE TEMP TABLE pf_kind AS
SELECT n, off, line, kind, host, qid, rest,
    CASE WHEN fixed THEN 'T' || substr(line, 1, 12)
         WHEN g.mon <> '' THEN 'T' || g.mon || ' ' || lpad(g.day, 2, ' ') || ' ' || g.hm
         ELSE 'I' || g.idate || ' ' || g.ihm || g.izone END AS stamp_key,
    CASE WHEN fixed THEN CAST(substr(line, 14, 2) AS BIGINT) * 1000000
            + CASE WHEN substr(line, 16, 1) = '.' THEN CAST(substr(split_part(substr(line, 17), ' ', 1) || '000000', 1, 6) AS BIGINT) ELSE 0 END
         WHEN g.mon <> '' THEN CAST(g.ss AS BIGINT) * 1000000
            + CASE WHEN g.frac <> '' THEN CAST(substr(substr(g.frac, 2) || '000000', 1, 6) AS BIGINT) ELSE 0 END
         WHEN CAST(g.iss AS INTEGER) < 60 THEN CAST(g.iss AS BIGINT) * 1000000
            + CASE WHEN g.ifrac <> '' THEN CAST(substr(substr(g.ifrac, 2) || '000000', 1, 6) AS BIGINT) ELSE 0 END
    END AS sec_us,  -- NULL: an RFC 3339 second out of range (fromisoformat refuses it)
    CASE WHEN kind = 'D' THEN strpos(rest, ' status=') END AS st
FROM (
    SELECT *,
        CASE agent
            WHEN 'A' THEN CASE WHEN prefix(rest, 'to=') THEN 'D' END
            WHEN 'Q' THEN CASE WHEN prefix(rest, 'from=') THEN 'F' WHEN rest = 'removed' THEN 'R' END
            WHEN 'C' THEN CASE WHEN prefix(rest, 'message-id=') THEN 'M' END
        END AS kind,
        substr(line, 7, 1) = ' ' AND substr(line, 10, 1) = ':' AS fixed,  -- 'Mmm dd hh:mm:ss'
        -- any other stamp shape (unpadded day, RFC 3339) is captured: slower, but rare
        CASE WHEN NOT (substr(line, 7, 1) = ' ' AND substr(line, 10, 1) = ':') THEN regexp_extract(hdr,
            '^(?:([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d):(\d\d)(\.\d+)?|(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?) ',
            ['mon', 'day', 'hm', 'ss', 'frac', 'idate', 'ihm', 'iss', 'ifrac', 'izone']) END AS g
    FROM pf_cut
    WHERE agent IS NOT NULL
)
WHERE kind IS NOT NULL;

CREATE OR REPLACE TEMP TABLE pf_parsed AS
SELECT n, off, CASE WHEN kind = 'D' OR expired THEN line END AS line, kind, expired,
    host, qid, stamp_key, sec_us, rest,
    CASE kind
        -- simple: the common shape with each key once (a repeated key: the last one counts)
        WHEN 'D' THEN coalesce(
            regexp_full_match(head, 'to=<[^<>",\x00-\x20\x7f]*>(?:, orig_to=<[^<>",]*>|, [a-z_]+=[^,<>"=]*)*')
            AND NOT contains(head, ', to=')
            AND NOT (relay_at > 0 AND contains(substr(head, relay_at + 8), ', relay='))
            AND NOT (dsn_at > 0 AND contains(substr(head, dsn_at + 6), ', dsn=')), false)
        WHEN 'F' THEN regexp_matches(rest, '^from=<[^<>",\x00-\x20\x7f]*>(?:, |$)')
        WHEN 'M' THEN regexp_full_match(substr(rest, 12), '[^\x00-\x20\x7f]*')
        ELSE true
    END AS simple,
    CASE WHEN kind = 'D' THEN lower(substr(head, 5, strpos(head, '>') - 5)) END AS recipient,
    CASE WHEN relay_at > 0 THEN substr(head, relay_at + 8, strpos(substr(head, relay_at + 8) || ',', ',') - 1) END AS relay,
    CASE WHEN dsn_at > 0 THEN substr(head, dsn_at + 6, strpos(substr(head, dsn_at + 6) || ',', ',') - 1) END AS dsn,
    CASE WHEN status_ok THEN word END AS status,
    CASE WHEN status_ok AND length(tail) > length(word) + 7
         THEN substr(tail, length(word) + 10, length(tail) - length(word) - 10) END AS text,
    CASE WHEN kind = 'F' THEN lower(substr(rest, 7, strpos(rest, '>') - 7)) END AS sender,
    CASE WHEN kind = 'M' THEN nullif(trim(substr(rest, 12), '<>'), '') END AS message_id
FROM (
    SELECT *,
        CASE WHEN kind = 'D' THEN regexp_full_match(tail, 'status=[a-z][a-z-]*(?: \(.*\))?') END AS status_ok,
        CASE WHEN kind = 'D' THEN substr(tail, 8, strpos(substr(tail, 8) || ' ', ' ') - 1) END AS word,
        CASE WHEN kind = 'D' THEN strpos(head, ', relay=') END AS relay_at,
        CASE WHEN kind = 'D' THEN strpos(head, ', dsn=') END AS dsn_at
    FROM (
        SELECT *,
            CASE WHEN st > 0 THEN rtrim(substr(rest, 1, st - 1), ',') END AS head,
            CASE WHEN st > 0 THEN substr(rest, st + 1) END AS tail,  -- 'status=word (text)'
            kind = 'F' AND contains(rest, ', status=expired') AS expired
        FROM pf_kind
    )
);
