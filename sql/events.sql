-- events.sql
-- What it defines: the `events` view every reader keys on (the rule, the guard, the exports,
-- the reports, `suppression show`, pipeline.connect()): the stored rows (view stored_events,
-- made by pipeline/store/warehouse.py from the local store or the lake) with every recipient
-- and recipient_domain in ONE canonical form, the domain in A-label form (pipeline/core/idn.py).
-- Reads:   stored_events
--
-- Why at read time: EventStore.write stores new rows in that form, but rows an older version
-- stored (or an older node uploaded to the lake, whose objects are never rewritten) keep what
-- the log wrote, `taro@例え.jp`; the same mailbox's new rows say `taro@xn--r8jz45g.jp`. Read as
-- they are, the two were two addresses with one error each. Only a recipient holding a non-ASCII
-- character (more bytes than characters: rare) is converted, by the Python functions
-- idn_ascii_address / idn_ascii_domain that warehouse.canonical_events registers (unchanged when
-- the domain is no valid IDN name: an SMTPUTF8 local part, a broken domain); every other row is
-- read as stored.
SELECT * REPLACE (
    CASE WHEN strlen(recipient) = length(recipient) THEN recipient
         ELSE idn_ascii_address(recipient) END AS recipient,
    CASE WHEN strlen(recipient_domain) = length(recipient_domain) THEN recipient_domain
         ELSE idn_ascii_domain(recipient_domain) END AS recipient_domain)
FROM stored_events
