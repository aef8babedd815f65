-- suppression_list.sql
-- What it holds: the statements that keep the suppression list, as named blocks (`-- name:`)
-- run by pipeline/suppression/store.py. DuckDB only: this is the list's storage, not a query
-- to port (the rule and the guard are the ported part).
-- Reads:   list_file    the rows of suppression/current.parquet (a relation over the file, or
--                       the empty table `empty_list_file` below when there is no file yet)
--          history_file the rows of suppression/history.parquet with their file_row_number
--                       (or `empty_history_file`)
-- Params:  per block: $address (normalised), $carrier, $note, $now (TIMESTAMPTZ of the change),
--          $limit (entries: at most this many, NULL for all),
--          $rule (the rule's settings as text), $path (the temp file a COPY writes),
--          $addresses / $carriers (VARCHAR[], parallel: many manual entries at once)
-- Columns: `consistency`: missing, stale, history_rows, listed, example; `entries`/`entry`: the
--          list's columns (empty_list_file); `address_history`: at, action, source, note, rule,
--          evidence; `staged`: additions, removals, history_additions; `listed_among`: address
-- The list (current.parquet): one row per suppressed address with the rule's evidence; the
-- history (history.parquet): every add and release in order, never rewritten except to append.
-- A change is staged in list_additions, list_removals and history_additions, then written by
-- write_history and write_list (COPY ... TO a temp file, renamed over the old one).

-- name: empty_list_file
CREATE OR REPLACE TEMP TABLE list_file (
    address VARCHAR, carrier VARCHAR, reasons VARCHAR,
    first_error TIMESTAMPTZ, last_error TIMESTAMPTZ, error_count BIGINT, distinct_days BIGINT,
    window_start DATE, last_dsn VARCHAR, last_reply_code SMALLINT, last_diagnostic VARCHAR,
    last_sent TIMESTAMPTZ, event_ids VARCHAR, source VARCHAR, note VARCHAR,
    added_at TIMESTAMPTZ, rule VARCHAR
);

-- name: empty_history_file
CREATE OR REPLACE TEMP TABLE history_file (
    "at" TIMESTAMPTZ, action VARCHAR, address VARCHAR, source VARCHAR, note VARCHAR,
    rule VARCHAR, evidence VARCHAR, file_row_number BIGINT
);

-- name: views
-- `suppression` (the list) and `suppression_history` (with `seq`, its order in the file).
CREATE OR REPLACE TEMP VIEW suppression AS
    SELECT address, carrier, reasons, first_error, last_error,
           CAST(error_count AS BIGINT) AS error_count, CAST(distinct_days AS BIGINT) AS distinct_days,
           window_start, last_dsn, CAST(last_reply_code AS SMALLINT) AS last_reply_code,
           last_diagnostic, last_sent, event_ids, source, note, added_at, rule
    FROM list_file;
CREATE OR REPLACE TEMP VIEW suppression_history AS
    SELECT "at", action, address, source, note, rule, evidence, file_row_number AS seq
    FROM history_file;
CREATE OR REPLACE TEMP VIEW history_latest AS
    SELECT address, arg_max(action, seq) AS action, arg_max(seq, seq) AS seq
    FROM suppression_history
    WHERE action IN ('added', 'released')
    GROUP BY address;
CREATE OR REPLACE TEMP TABLE list_additions AS SELECT * FROM suppression LIMIT 0;
CREATE OR REPLACE TEMP TABLE list_removals AS SELECT address FROM suppression LIMIT 0;
CREATE OR REPLACE TEMP TABLE history_additions AS
    SELECT "at", action, address, source, note, rule, evidence, seq AS ord
    FROM suppression_history LIMIT 0;

-- name: consistency
-- Columns: missing  (addresses the history says are suppressed that the list lacks: the list is
--                    older than its history; the sender must not trust it),
--          stale    (listed addresses whose latest action is a release: safe, repaired by the
--                    next change), history_rows, listed, example (one missing address)
WITH compared AS (
    SELECT h.address, h.action, l.address IS NOT NULL AS listed
    FROM history_latest h
    LEFT JOIN suppression l USING (address)
)
SELECT CAST(count(*) FILTER (WHERE action = 'added' AND NOT listed) AS BIGINT) AS missing,
       CAST(count(*) FILTER (WHERE action = 'released' AND listed) AS BIGINT) AS stale,
       (SELECT CAST(count(*) AS BIGINT) FROM suppression_history) AS history_rows,
       (SELECT CAST(count(*) AS BIGINT) FROM suppression) AS listed,
       min(address) FILTER (WHERE action = 'added' AND NOT listed) AS example
FROM compared;

-- name: addresses
SELECT address FROM suppression;

-- name: entries
-- $limit: at most this many (NULL: all)
SELECT * FROM suppression ORDER BY address LIMIT $limit;

-- name: entries_brief
-- The same entries, only the columns `suppression list` aligns.
SELECT address, carrier, reasons, source FROM suppression ORDER BY address LIMIT $limit;

-- name: entry
SELECT * FROM suppression WHERE address = $address;

-- name: address_history
SELECT "at", action, source, note, rule, evidence
FROM suppression_history WHERE address = $address ORDER BY seq;

-- name: stage_repair
-- The list as its history says it should be: addresses whose latest action is an add and that
-- the list lacks come back with the evidence the history kept; listed addresses whose latest
-- action is a release go.
INSERT INTO list_additions
SELECT h.address,
       json_extract_string(a.evidence, '$.carrier'),
       json_extract_string(a.evidence, '$.reasons'),
       CAST(json_extract_string(a.evidence, '$.first_error') AS TIMESTAMPTZ),
       CAST(json_extract_string(a.evidence, '$.last_error') AS TIMESTAMPTZ),
       CAST(json_extract_string(a.evidence, '$.error_count') AS BIGINT),
       CAST(json_extract_string(a.evidence, '$.distinct_days') AS BIGINT),
       CAST(json_extract_string(a.evidence, '$.window_start') AS DATE),
       json_extract_string(a.evidence, '$.last_dsn'),
       CAST(json_extract_string(a.evidence, '$.last_reply_code') AS SMALLINT),
       json_extract_string(a.evidence, '$.last_diagnostic'),
       CAST(json_extract_string(a.evidence, '$.last_sent') AS TIMESTAMPTZ),
       json_extract_string(a.evidence, '$.event_ids'),
       a.source, a.note, a."at", a.rule
FROM history_latest h
JOIN suppression_history a ON a.address = h.address AND a.seq = h.seq
WHERE h.action = 'added' AND h.address NOT IN (SELECT address FROM suppression);
INSERT INTO list_removals
SELECT h.address FROM history_latest h JOIN suppression l USING (address)
WHERE h.action = 'released';

-- name: new_entries
-- The rule's candidates (table candidates: the columns of suppression_candidates.sql) that are
-- not listed yet.
CREATE OR REPLACE TEMP TABLE new_entries AS
SELECT c.* FROM candidates c
WHERE NOT EXISTS (SELECT 1 FROM suppression s WHERE s.address = c.address);

-- name: counts
SELECT (SELECT CAST(count(*) AS BIGINT) FROM candidates) AS marked,
       (SELECT CAST(count(*) AS BIGINT) FROM candidates) - (SELECT CAST(count(*) AS BIGINT) FROM new_entries)
           AS already_listed,
       (SELECT min(first_error) FROM new_entries) AS first_error;

-- name: new
SELECT * FROM new_entries ORDER BY address;

-- name: stage_rule_entries
-- The rule's new entries (table new_entries: the columns of suppression_candidates.sql).
INSERT INTO list_additions
SELECT address, carrier, reasons, first_error, last_error, error_count, distinct_days,
       window_start, last_dsn, last_reply_code, last_diagnostic, last_sent, event_ids,
       'rule', $note, $now, $rule
FROM new_entries;
INSERT INTO history_additions
SELECT $now, 'added', address, 'rule', $note, $rule,
       json_object('carrier', carrier, 'reasons', reasons, 'first_error', first_error,
                   'last_error', last_error, 'error_count', error_count,
                   'distinct_days', distinct_days, 'window_start', window_start,
                   'last_dsn', last_dsn, 'last_reply_code', last_reply_code,
                   'last_diagnostic', last_diagnostic, 'last_sent', last_sent,
                   'event_ids', event_ids),
       row_number() OVER (ORDER BY address)
FROM new_entries;

-- name: stage_manual_add
INSERT INTO list_additions (address, carrier, source, note, added_at, rule)
VALUES ($address, $carrier, 'manual', $note, $now, 'manual');
INSERT INTO history_additions
VALUES ($now, 'added', $address, 'manual', $note, 'manual', json_object('carrier', $carrier), 1);

-- name: listed_among
-- Which of $addresses (VARCHAR[]) are on the list.
SELECT address FROM suppression WHERE address IN (SELECT unnest($addresses::VARCHAR[]));

-- name: stage_manual_adds
-- Many manual entries in one change: $addresses and $carriers are parallel lists (in order).
INSERT INTO list_additions (address, carrier, source, note, added_at, rule)
SELECT a.address, a.carrier, 'manual', $note, $now, 'manual'
FROM (SELECT unnest($addresses::VARCHAR[]) AS address, unnest($carriers::VARCHAR[]) AS carrier) AS a;
INSERT INTO history_additions
SELECT $now, 'added', a.address, 'manual', $note, 'manual', json_object('carrier', a.carrier), a.n
FROM (SELECT unnest($addresses::VARCHAR[]) AS address, unnest($carriers::VARCHAR[]) AS carrier,
             unnest(range(1, len($addresses::VARCHAR[]) + 1)) AS n) AS a;

-- name: stage_release
INSERT INTO list_removals VALUES ($address);
INSERT INTO history_additions
SELECT $now, 'released', address, source, $note, rule,
       json_object('carrier', carrier, 'reasons', reasons, 'first_error', first_error,
                   'last_error', last_error, 'error_count', error_count,
                   'distinct_days', distinct_days, 'event_ids', event_ids),
       1
FROM suppression WHERE address = $address;

-- name: staged
SELECT (SELECT CAST(count(*) AS BIGINT) FROM list_additions) AS additions,
       (SELECT CAST(count(*) AS BIGINT) FROM list_removals) AS removals,
       (SELECT CAST(count(*) AS BIGINT) FROM history_additions) AS history_additions;

-- name: write_history
COPY (
    SELECT "at", action, address, source, note, rule, evidence
    FROM (SELECT *, 0 AS part, seq AS ord FROM suppression_history
          UNION ALL
          SELECT "at", action, address, source, note, rule, evidence, NULL, 1, ord
          FROM history_additions)
    ORDER BY part, ord
) TO $path (FORMAT parquet, COMPRESSION zstd);

-- name: write_list
COPY (
    SELECT * FROM suppression
    WHERE address NOT IN (SELECT address FROM list_removals)
      AND address NOT IN (SELECT address FROM list_additions)
    UNION ALL
    SELECT * FROM list_additions
    ORDER BY address
) TO $path (FORMAT parquet, COMPRESSION zstd);

-- name: idn_addresses
-- The listed addresses whose domain has an A-label (xn--): export.py gives their Unicode form.
SELECT address FROM suppression WHERE address LIKE '%xn--%' ORDER BY address;

-- name: stage_unicode_forms
-- $addresses and $unicode: lists of equal length (an address in A-label form, its Unicode form).
CREATE OR REPLACE TEMP TABLE unicode_forms AS
SELECT unnest($addresses::VARCHAR[]) AS address, unnest($unicode::VARCHAR[]) AS address_unicode;

-- name: export_csv
-- The list for spreadsheets and CRMs: address first, a key kept as it is (address_cell only
-- quotes a local part that needs quotes again), every other text cell through csv_safe, times
-- as local ISO 8601 with their offset. The last column, address_unicode, is the address for
-- reading: its domain in Unicode when it has A-labels (taro@例え.jp for taro@xn--r8jz45g.jp),
-- else the address itself (table unicode_forms: stage_unicode_forms).
COPY (
    SELECT address_cell(s.address) AS address, csv_safe(carrier) AS carrier, csv_safe(reasons) AS reasons,
           iso_local(first_error, $tz) AS first_error, iso_local(last_error, $tz) AS last_error,
           error_count, distinct_days, window_start, csv_safe(last_dsn) AS last_dsn,
           last_reply_code, csv_safe(last_diagnostic) AS last_diagnostic,
           iso_local(last_sent, $tz) AS last_sent, csv_safe(source) AS source,
           csv_safe(note) AS note, iso_local(added_at, $tz) AS added_at, csv_safe(rule) AS rule,
           address_cell(coalesce(u.address_unicode, s.address)) AS address_unicode
    FROM suppression s LEFT JOIN unicode_forms u ON u.address = s.address
    ORDER BY s.address
) TO $path (FORMAT csv, HEADER);

-- name: export_parquet
COPY (
    SELECT address, carrier, reasons, first_error, last_error, error_count, distinct_days,
           window_start, last_dsn, last_reply_code, last_diagnostic, last_sent, source, note,
           added_at, rule
    FROM suppression
    ORDER BY address
) TO $path (FORMAT parquet, COMPRESSION zstd);

-- name: export_filtered_csv
-- Table filtered: the rows of sql/filtered_addresses.sql.
COPY (
    SELECT address_cell(address) AS address, csv_safe(carrier) AS carrier, refusals,
           iso_local(first_refusal, $tz) AS first_refusal, iso_local(last_refusal, $tz) AS last_refusal,
           csv_safe(last_reply) AS last_reply, iso_local(last_delivery, $tz) AS last_delivery
    FROM filtered
    ORDER BY carrier, address
) TO $path (FORMAT csv, HEADER);

-- name: export_filtered_parquet
COPY (SELECT * FROM filtered ORDER BY carrier, address) TO $path (FORMAT parquet, COMPRESSION zstd);

-- name: listed_count
SELECT CAST(count(*) AS BIGINT) FROM suppression;

-- name: filtered_count
SELECT CAST(count(*) AS BIGINT) FROM filtered;

-- name: flagged_periods
-- The periods the guard flagged, for sql/guard_replies.sql ($periods: a list of
-- {kind, carrier, period_start, period_end} structs; a period of kind 'hour' or 'day' ends an
-- hour or a day after it starts, one of kind 'carrier' (the per-carrier share test: the whole
-- evaluated period) at its period_end).
CREATE OR REPLACE TEMP TABLE flagged_periods AS
SELECT p.kind, p.carrier, p.period_start,
       CASE p.kind WHEN 'hour' THEN p.period_start + INTERVAL 1 HOUR
                   WHEN 'day' THEN p.period_start + INTERVAL 1 DAY
                   ELSE CAST(p.period_end AS TIMESTAMP) END AS period_end
FROM (SELECT unnest($periods, recursive := true)) p;

-- name: released_since
-- Releases recorded after $since (the previous export's time): entries that left the list on purpose.
SELECT CAST(count(*) AS BIGINT) FROM suppression_history WHERE action = 'released' AND "at" > $since;
