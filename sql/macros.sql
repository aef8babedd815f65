-- macros.sql
-- What it defines: the scalar macros every SQL file shares, one definition per meaning (run
-- once per connection by pipeline/store/warehouse.py attach_views()). Scalar macros only: a
-- table macro does not port to Spark; the Spark port expands these in place.
-- Reads:   nothing
--
-- counted_error(status, scope, reason, counted_reasons) -> BOOLEAN
--   THE "counted error" of the suppression rule: a failed or retried attempt (deferred, bounced,
--   expired) whose fault is the recipient's (scope 'recipient') for one of the reasons the rule
--   counts (rule.counted_reasons). Applied in one place, sql/counted_errors.sql (with the bounce
--   binding), whose kept rows the rule, the guard, the reports and `suppression show` read.
-- from_bounce_mail(source_file) -> BOOLEAN
--   The row is a bounce mail's (read by `mailhygiene bounces`: pipeline/sender/events.py
--   bounce_event, source_file 'mailhygiene-bounces:<mail>'). The one test of it: sql/not_attempts.sql
--   (a restated failure) and sql/bounce_mails.sql (the binding). Anyone can mail the bounce
--   address, so such a row counts only where binds_bounce holds.
-- binds_bounce(message, day, witness_message, witness_day, window_days) -> BOOLEAN
--   A witness (an event to the same address that is no bounce mail's: the send daemon's own
--   attempt, an MTA log line) binds a bounce-mail row to mail we sent: the bounce returns a
--   Message-ID (message, without angle brackets) and the witness carries it, or the witness
--   falls on one of the window_days local days up to the bounce's day (the rule's look-back) or
--   on the day after (the bounce's date is the remote's clock). The second holds whether the
--   bounce returns a Message-ID or not: a forger could leave it out, and qmail's and some
--   sendmail lines log none to match (a bounce of mail older than the look-back needs its
--   Message-ID in a witness). A forged
--   DSN naming an address we never mailed, or returning a Message-ID we never sent to it, has
--   no witness: kept in the store, not counted. Applied in one place, sql/bounce_mails.sql, whose
--   kept rows sql/bound_marks.sql (no attempt: no figure counts it), sql/counted_errors.sql,
--   sql/filtered_addresses.sql and sql/address_history.sql read.
-- local_day(ts, tz) -> DATE
--   The calendar day of instant ts in the IANA zone tz (the rule's and the reports' days).
-- day_in_period(day, since, until) -> BOOLEAN
--   day lies in [since, until]; either bound may be NULL (= open).
-- partition_in_period(date, since, until) -> BOOLEAN
--   The event store's `date` partition (a UTC day, 'YYYY-MM-DD') may hold events of a local
--   day in [since, until]: a day either side of the bounds, as zones differ from UTC by less
--   than a day. It only prunes files; day_in_period decides.
-- csv_safe(value) -> VARCHAR
--   A text cell a spreadsheet would run as a formula (it starts with = + - @ TAB or CR) gets a
--   leading apostrophe. Must agree with pipeline/core/csvsafe.py neutralise() (a differential
--   test holds them together). Never applied to the address column, a key (see csvsafe.py).
-- address_cell(address) -> VARCHAR
--   The address column of a CSV export: the stored address (normalised: the quotes of a quoted
--   local part are gone) as RFC 5322 spells it, i.e. with its local part quoted again when it
--   holds a space, a control character or one of "(),:;<>@[\] (`"=1+2 x"@docomo.ne.jp`, not
--   `=1+2 x@docomo.ne.jp`, which a spreadsheet runs as a formula and no CRM knows). Every other
--   address (dot-atoms, docomo's `taro..yamada.@`, `+81...@`) is written exactly as stored.
-- utc_offset_minutes(ts, tz) -> BIGINT
--   The zone's offset from UTC at instant ts, in whole minutes (rounded: the two epochs of a
--   time with microseconds differ by 32399.9999... seconds in Asia/Tokyo, not 32400).
-- iso_local(ts, tz) -> VARCHAR
--   ts as local ISO 8601 time (whole seconds) with its offset, e.g. 2026-11-17T23:50:00+09:00
--   (the CSV export).
-- message_key(message_id) -> VARCHAR
--   The Message-ID as the store spells it (pipeline/store/records.py bare_message_id: no angle
--   brackets or surrounding space; NULL for none), also for rows stored before every source
--   spelled it so: nullif(trim(message_id, '<> '), ''), trimming only an id that needs it (a
--   trim of every row's id cost more than the rest of sql/witnessed_events.sql).
-- failed_after(failed_at, failed_file, failed_offset, ts, source_file, source_offset) -> BOOLEAN
--   The message's latest failure to the address (failed_at, read at failed_offset of
--   failed_file; NULL: none) comes after the attempt at ts (read at source_offset of
--   source_file): a later time, or in the same second a later line of the same log. A `sent`
--   for which it holds only handed the message on (a content filter, an internal relay): no
--   delivery (sql/not_attempts.sql's 'hand_off', which `attempts` leaves out: the rule's
--   last_sent, the reports and `suppression show` read it).

CREATE OR REPLACE MACRO counted_error(status, scope, reason, counted_reasons) AS
    status IN ('deferred', 'bounced', 'expired')
    AND scope = 'recipient'
    AND list_contains(counted_reasons, reason);

CREATE OR REPLACE MACRO from_bounce_mail(source_file) AS
    coalesce(source_file LIKE 'mailhygiene-bounces:%', FALSE);

CREATE OR REPLACE MACRO binds_bounce(message, day, witness_message, witness_day, window_days) AS
    coalesce(witness_message = message, FALSE)
    OR (witness_day >= day - (window_days - 1) AND witness_day <= day + 1);

CREATE OR REPLACE MACRO local_day(ts, tz) AS
    CAST(ts AT TIME ZONE tz AS DATE);

CREATE OR REPLACE MACRO day_in_period(day, since, until) AS
    (since IS NULL OR day >= CAST(since AS DATE))
    AND (until IS NULL OR day <= CAST(until AS DATE));

CREATE OR REPLACE MACRO partition_in_period(date, since, until) AS
    (since IS NULL OR date >= strftime(CAST(since AS DATE) - 1, '%Y-%m-%d'))
    AND (until IS NULL OR date <= strftime(CAST(until AS DATE) + 1, '%Y-%m-%d'));

CREATE OR REPLACE MACRO csv_safe(value) AS
    CASE WHEN left(value, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN '''' || value
         ELSE value END;

CREATE OR REPLACE MACRO address_cell(address) AS
    CASE WHEN strpos(address, '@') > 0
              AND regexp_matches(left(address, length(address) - strpos(reverse(address), '@')),
                                 '[\x00-\x20"(),:;<>@\[\\\]\x7f]')
         THEN '"' || replace(replace(left(address, length(address) - strpos(reverse(address), '@')),
                                     '\', '\\'), '"', '\"')
              || '"' || right(address, strpos(reverse(address), '@'))
         ELSE address END;

CREATE OR REPLACE MACRO utc_offset_minutes(ts, tz) AS
    CAST(round((epoch(ts AT TIME ZONE tz) - epoch(ts)) / 60) AS BIGINT);

CREATE OR REPLACE MACRO iso_local(ts, tz) AS
    strftime(ts AT TIME ZONE tz, '%Y-%m-%dT%H:%M:%S')
    || CASE WHEN utc_offset_minutes(ts, tz) < 0 THEN '-' ELSE '+' END
    || lpad(CAST(abs(utc_offset_minutes(ts, tz)) // 60 AS VARCHAR), 2, '0')
    || ':'
    || lpad(CAST(abs(utc_offset_minutes(ts, tz)) % 60 AS VARCHAR), 2, '0');

CREATE OR REPLACE MACRO failed_after(failed_at, failed_file, failed_offset, ts, source_file, source_offset) AS
    coalesce(failed_at > ts
             OR (failed_at = ts AND failed_file = source_file AND failed_offset > source_offset), FALSE);

CREATE OR REPLACE MACRO message_key(message_id) AS
    CASE WHEN left(message_id, 1) IN ('<', '>', ' ') OR right(message_id, 1) IN ('<', '>', ' ')
         THEN nullif(trim(message_id, '<> '), '')
         ELSE nullif(message_id, '') END;
