"""Classifier behaviour: the carriers.md reply table, sender-side refusals, qmail/sendmail texts,
hard/soft, the cache and parse_reply.

Run `python tests/test_classify.py --bench [N]` for the throughput measurement quoted in
docs/classifier.md (1M varied diagnostics by default).
"""

from __future__ import annotations

import random
import sys
import time

import pytest

from pipeline.classify.classifier import (
    Classification,
    cache_clear,
    cache_info,
    classify,
    describe,
    is_hard,
    normalise,
    parse_reply,
)
from pipeline.classify.reasons import ORDER, REASONS, SCOPES


def said(reply: str, command: str, host: str = "mx.example.jp[192.0.2.1]") -> str:
    return f"host {host} said: {reply} (in reply to {command} command)"


# ------------------------------------------------------------------ carriers.md reply table
# (carrier, reply, phase, expected reason, expected scope, hard)
CARRIER_TABLE = [
    ("docomo", "550 Unknown user taro@docomo.ne.jp", "rcpt", "user_unknown", "recipient", True),
    ("docomo", "550 Unknown user taro@docomo.ne.jp", "end_of_data", "filtered", "sender", False),
    ("docomo", "550 Unknown user taro@docomo.ne.jp", "data", "filtered", "sender", False),
    ("docomo", "552 Too much mail data taro@docomo.ne.jp", "data", "mailbox_full", "recipient", False),
    ("docomo", "552 Too many recipients", "rcpt", "too_many_recipients", "sender", False),
    ("docomo", "500 Line Too Long", "data", "content", "sender", False),
    ("au", "550 <taro@au.com>: User unknown", "rcpt", "user_unknown", "recipient", True),
    ("au", "550 : User unknown", "end_of_data", "filtered", "sender", False),
    ("au", "554 <taro@au.com>: Relay access denied", "rcpt", "syntax", "recipient", True),
    ("softbank", "550 Invalid recipient: <taro@i.softbank.jp>", "rcpt", "user_unknown", "recipient", True),
    ("softbank", "553 <mail.example.co.jp> does not exist", "mail", "sender_domain", "sender", False),
]
_COMMAND = {"rcpt": "RCPT TO", "end_of_data": "end of DATA", "data": "DATA", "mail": "MAIL FROM"}


@pytest.mark.parametrize("carrier,reply,phase,reason,scope,hard", CARRIER_TABLE)
def test_carrier_reply_table(carrier, reply, phase, reason, scope, hard):
    text = said(reply, _COMMAND[phase])
    c = classify(status="bounced", diagnostic=text, dsn="5.0.0", reply_code=int(reply[:3]),
                 smtp_phase=phase, carrier=carrier, mta="postfix")
    assert c == Classification(reason, scope, hard)


@pytest.mark.parametrize("carrier,reply,phase,reason,scope,hard", CARRIER_TABLE)
def test_carrier_table_without_phase_argument_reads_phase_from_text(carrier, reply, phase, reason, scope, hard):
    """The parser may not pass the phase: Postfix's '(in reply to … command)' still decides."""
    c = classify(status="bounced", diagnostic=said(reply, _COMMAND[phase]), dsn="5.0.0")
    assert c.reason == reason


def test_carrier_argument_never_decides():
    text = said("550 Unknown user taro@docomo.ne.jp", "RCPT TO")
    assert {classify("bounced", text, carrier=c).reason for c in ("docomo", "au", "other", None)} == {"user_unknown"}


def test_same_words_from_a_non_carrier_server_follow_the_same_phase_rule():
    text = said("550 Unknown user kijitora@example.net", "end of DATA", "mail.example.net[192.0.2.78]")
    assert classify("bounced", text, dsn="5.0.0", smtp_phase="end_of_data").reason == "filtered"


def test_explicit_5_1_1_after_data_is_still_user_unknown():
    text = said("550 5.1.1 <kijitora@example.net>: Recipient address rejected: User unknown", "end of DATA")
    c = classify("bounced", text, dsn="5.1.1", smtp_phase="end_of_data", mta="postfix")
    assert (c.reason, c.scope, c.hard) == ("user_unknown", "recipient", True)


def test_au_relay_access_denied_is_never_user_unknown():
    c = classify("bounced", said('554 5.7.1 <"taro..yamada."@ezweb.ne.jp>: Relay access denied', "RCPT TO"),
                 dsn="5.7.1", smtp_phase="rcpt")
    assert c.reason == "syntax"


# ------------------------------------------------------------------ never the address's fault
SENDER_SIDE = [
    ("deferred", "host mx[192.0.2.1] refused to talk to me: 421 4.7.0 Too many concurrent SMTP connections from this IP", "4.7.0", "rate_limited"),
    ("deferred", said("421 4.7.0 Try again later, closing connection.", "MAIL FROM"), "4.7.0", "rate_limited"),
    ("deferred", said("450 4.7.1 Rate limit exceeded, slow down", "RCPT TO"), "4.7.1", "rate_limited"),
    ("deferred", said("450 Too many connections from your host", "RCPT TO"), "4.0.0", "rate_limited"),
    ("deferred", said("421 Service not available", "RCPT TO"), "4.0.0", "rate_limited"),
    ("bounced", said("554 5.7.1 Service unavailable; Client host [192.0.2.9] blocked using zen.spamhaus.org", "RCPT TO"), "5.7.1", "blocked"),
    ("bounced", said("550 5.7.1 Client host rejected: Access denied; IP listed at bl.spamcop.net", "RCPT TO"), "5.7.1", "blocked"),
    ("bounced", said("550 5.7.1 Message rejected due to poor IP reputation", "RCPT TO"), "5.7.1", "blocked"),
    ("bounced", said("550 5.7.606 Access denied, banned sending IP [192.0.2.9]", "RCPT TO"), "5.7.606", "blocked"),
    ("bounced", said("550 5.7.1 SPF check failed for example.jp", "RCPT TO"), "5.7.1", "auth"),
    ("bounced", said("550 5.7.26 Unauthenticated email from example.jp is not accepted due to domain's DMARC policy", "end of DATA"), "5.7.26", "auth"),
    ("bounced", said("550 5.7.25 The IP address sending this message does not have a PTR record setup", "RCPT TO"), "5.7.25", "auth"),
    ("bounced", said("450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.9]", "RCPT TO"), "4.7.1", "auth"),
    ("bounced", said("554 5.7.1 Message rejected as spam by Content Filtering", "end of DATA"), "5.7.1", "spam"),
    ("bounced", said("550 5.7.1 Delivery not authorized, message refused", "RCPT TO"), "5.7.1", "policy"),
    ("bounced", said("550 5.7.0 Local policy violation", "RCPT TO"), "5.7.0", "policy"),
    ("bounced", "SMTPUTF8 is required, but was not offered by host mx.example.jp[192.0.2.1]", "5.6.7", "content"),
    ("bounced", said("552 5.3.4 Message size exceeds fixed limit", "end of DATA"), "5.3.4", "mesg_too_big"),
]


@pytest.mark.parametrize("status,text,dsn,reason", SENDER_SIDE)
def test_sender_side_refusals_are_never_recipient_scope(status, text, dsn, reason):
    c = classify(status=status, diagnostic=text, dsn=dsn, mta="postfix")
    assert c.reason == reason
    assert c.scope == "sender"
    assert c.hard is False


def test_rbl_with_a_5_1_1_code_still_blames_us():
    text = said("550 5.1.1 Rejected: 192.0.2.9 listed at zen.spamhaus.org", "RCPT TO")
    c = classify("bounced", text, dsn="5.1.1")
    assert (c.reason, c.scope) == ("blocked", "sender")


def test_generic_5_7_x_without_words_is_policy_not_recipient():
    c = classify("bounced", said("550 5.7.1 Go elsewhere", "RCPT TO"), dsn="5.7.1")
    assert c.scope == "sender"


# ------------------------------------------------------------------ other reasons
OTHER = [
    ("bounced", said("550 5.1.1 <a@example.com>: Recipient address rejected: User unknown in virtual mailbox table", "RCPT TO"), "5.1.1", "user_unknown", "recipient", True),
    ("bounced", said("550-5.1.1 The email account that you tried to reach does not exist.", "RCPT TO"), "5.1.1", "user_unknown", "recipient", True),
    ("deferred", said("450 4.1.1 <a@example.com>: Recipient address rejected: unverified address", "RCPT TO"), "4.1.1", "user_unknown", "recipient", False),
    ("bounced", "Host or domain name not found. Name service error for name=nosuch.example type=A: Host not found", "5.4.4", "host_unknown", "recipient", True),
    ("deferred", "Host or domain name not found. Name service error for name=example.jp type=MX: Host not found, try again", "4.4.3", "network", "network", False),
    ("bounced", said("550 5.2.1 The email account that you tried to reach is disabled.", "RCPT TO"), "5.2.1", "mailbox_disabled", "recipient", True),
    ("bounced", said("552 5.2.2 Mailbox full", "RCPT TO"), "5.2.2", "mailbox_full", "recipient", False),
    ("deferred", "connect to mx.example.jp[192.0.2.1]:25: Connection timed out", "4.4.1", "network", "network", False),
    ("deferred", "connect to mx.example.jp[192.0.2.1]:25: Connection refused", "4.4.1", "network", "network", False),
    ("deferred", "delivery temporarily suspended: lost connection with mx.example.jp[192.0.2.1] while receiving the initial server greeting", "4.4.2", "network", "network", False),
    ("deferred", said("451 4.3.0 Temporary local problem - please try later", "RCPT TO"), "4.3.0", "system", "unknown", False),
    ("bounced", said("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "RCPT TO"), "5.1.10", "user_unknown", "recipient", True),
    ("bounced", said("556 5.1.10 Recipient address has null MX", "RCPT TO"), "5.1.10", "host_unknown", "recipient", True),
]


@pytest.mark.parametrize("status,text,dsn,reason,scope,hard", OTHER)
def test_other_reasons(status, text, dsn, reason, scope, hard):
    assert classify(status=status, diagnostic=text, dsn=dsn, mta="postfix") == Classification(reason, scope, hard)


def test_dsn_decides_when_no_phrase_matches():
    c = classify("bounced", said("550 5.1.1 Computer says no", "RCPT TO"), dsn="5.1.1", mta="postfix")
    assert c.reason == "user_unknown"
    c = classify("bounced", said("552 5.2.2 Computer says no", "RCPT TO"), dsn="5.2.2", mta="postfix")
    assert c.reason == "mailbox_full"


def test_postfix_synthesised_5_0_0_is_not_trusted():
    c = classify("bounced", said("550 Computer says no", "RCPT TO"), dsn="5.0.0", mta="postfix")
    assert c.reason == "undefined"


def test_delivered():
    c = classify(status="sent", diagnostic="250 2.0.0 Ok: queued as 4jc5zM4YDDzBvb1", dsn="2.0.0")
    assert c == Classification("delivered", "none", None)


def test_expired_keeps_a_specific_last_deferral():
    full = said("452 4.2.2 Mailbox full", "RCPT TO")
    assert classify("expired", full).reason == "mailbox_full"
    assert classify("expired", said("421 4.7.0 Too many connections", "MAIL FROM")).reason == "rate_limited"
    assert classify("expired", "connect to mx.example.jp[192.0.2.1]:25: No route to host").reason == "network"


def test_expired_without_specific_text_is_expired():
    for text in ("", None, "connect to mx.example.jp[192.0.2.1]:25: Connection timed out",
                 said("421 Service not available", "RCPT TO")):
        c = classify("expired", text)
        assert (c.reason, c.scope, c.hard) == ("expired", "unknown", False), text


# ------------------------------------------------------------------ qmail
QMAIL = [
    ("bounced", "192.0.2.1 does not like recipient./Remote host said: 550 5.1.1 <taro@example.jp>... User unknown/Giving up on 192.0.2.1./", "rcpt", "user_unknown", True),
    ("bounced", "192.0.2.1 does not like recipient./Remote host said: 550 <taro@docomo.ne.jp>: Unknown user/Giving up on 192.0.2.1./", "rcpt", "user_unknown", True),
    ("bounced", "192.0.2.1 failed after I sent the message./Remote host said: 550 Unknown user taro@docomo.ne.jp/", "end_of_data", "filtered", False),
    ("bounced", "Connected to 192.0.2.1 but sender was rejected./Remote host said: 553 <example.co.jp> does not exist/", "mail", "sender_domain", False),
    ("bounced", "Connected to 192.0.2.1 but sender was rejected./Remote host said: 553 sorry, your envelope sender has been denied (#5.7.1)/", "mail", "sender_domain", False),
    ("bounced", "Sorry, I couldn't find any host named nosuch.example. (#5.1.2)/", None, "host_unknown", True),
    ("deferred", "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)/", None, "network", False),
    ("bounced", "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)/I'm not going to try again; this message has been in the queue too long./", None, "network", False),
    ("bounced", "Sorry, I couldn't find a mail exchanger or IP address. (#4.4.1)/I'm not going to try again; this message has been in the queue too long./", None, "expired", False),
    ("deferred", "192.0.2.1 does not like recipient./Remote host said: 450 4.2.2 Mailbox full/Giving up on 192.0.2.1./", "rcpt", "mailbox_full", False),
]


@pytest.mark.parametrize("status,text,phase,reason,hard", QMAIL)
def test_qmail_decoded_texts(status, text, phase, reason, hard):
    c = classify(status=status, diagnostic=text, smtp_phase=phase, mta="qmail")
    assert (c.reason, c.hard) == (reason, hard)
    # the parser's phase is optional: qmail's wording gives it
    assert classify(status=status, diagnostic=text, mta="qmail").reason == reason


def test_qmail_still_escaped_text_is_unescaped():
    raw = "192.0.2.1_does_not_like_recipient./Remote_host_said:_550_5.1.1_<taro@example.jp>..._User_unknown/Giving_up_on_192.0.2.1./"
    assert classify("bounced", raw, mta="qmail").reason == "user_unknown"
    assert parse_reply(raw) == (550, "5.1.1")


def test_qmail_giving_up_is_not_expiry():
    text = "192.0.2.1 does not like recipient./Remote host said: 554 5.7.1 Service unavailable; blocked using bl.spamcop.net/Giving up on 192.0.2.1./"
    assert classify("bounced", text, mta="qmail").reason == "blocked"


# ------------------------------------------------------------------ sendmail
def test_sendmail_stat_user_unknown_with_5_1_1_is_user_unknown():
    c = classify(status="bounced", diagnostic="User unknown", dsn="5.1.1", mta="sendmail")
    assert (c.reason, c.scope, c.hard) == ("user_unknown", "recipient", True)


def test_sendmail_service_unavailable_5_2_0_is_not_user_unknown():
    c = classify(status="bounced", diagnostic="Service unavailable", dsn="5.2.0", mta="sendmail")
    assert c.reason == "undefined"
    assert c.scope == "unknown"


def test_sendmail_own_dsn_mapping_carries_only_what_the_reply_code_says():
    # recorded from a real sendmail (tests/test_sendmail_real.py): dsn= is sendmail's mapping of the
    # reply code: 452 -> 4.3.1 (even for "452 4.2.2 Mailbox full"), 550 after DATA -> 5.2.0,
    # 552 -> 5.2.2 (RFC 5321: exceeded storage allocation)
    assert classify("deferred", "Deferred: 452 Requested action aborted", dsn="4.3.1", mta="sendmail").reason != "system"
    assert classify("bounced", "Service unavailable", dsn="5.2.0", mta="sendmail").reason == "undefined"
    assert classify("bounced", "Service unavailable", dsn="5.2.2", mta="sendmail").reason == "mailbox_full"
    # the remote's own enhanced code in reply= outranks sendmail's 5.1.1 (any 550 at RCPT TO)
    c = classify("bounced", "550 5.7.1 <a@example.jp>: Recipient address rejected: Access denied",
                 dsn="5.1.1", mta="sendmail", smtp_phase="rcpt")
    assert (c.reason, c.scope) == ("policy", "sender")


def test_sendmail_reply_text_is_used_when_present():
    c = classify("bounced", "550 5.7.1 <taro@example.jp>... receiver refuses mail from your domain", dsn="5.1.1", mta="sendmail")
    assert (c.reason, c.scope) == ("filtered", "sender")
    c = classify("bounced", "550 <taro@ezweb.ne.jp>: User unknown", dsn="5.1.1", mta="sendmail")
    assert c.reason == "user_unknown"


def test_sendmail_deferred_421_in_stat_and_221_in_reply():
    assert classify("deferred", "Deferred: 421 4.7.0 Too many connections", dsn="4.7.0", mta="sendmail").reason == "rate_limited"
    c = classify("deferred", "221 Bye", dsn="4.0.0", mta="sendmail")
    assert c.hard is False and c.scope != "recipient"


def test_sendmail_host_unknown_and_expiry():
    assert classify("bounced", "Host unknown (Name server: nosuch.example: host not found)", dsn="5.1.2", mta="sendmail").reason == "host_unknown"
    assert classify("bounced", "Cannot send message for 5 days", dsn="4.4.7", mta="sendmail").reason == "expired"


# ------------------------------------------------------------------ hard / soft
@pytest.mark.parametrize("reason,status,code,dsn,hard", [
    ("user_unknown", "bounced", 550, "5.1.1", True),
    ("user_unknown", "bounced", 450, "4.1.1", False),
    ("user_unknown", "deferred", 550, "5.1.1", False),
    ("user_unknown", "bounced", None, None, True),
    ("user_unknown", "expired", None, None, False),
    ("user_unknown", "bounced", None, "4.1.1", False),
    ("host_unknown", "bounced", None, "5.1.2", True),
    ("mailbox_disabled", "bounced", 550, None, True),
    ("syntax", "bounced", 554, None, True),
    ("mailbox_full", "bounced", 552, "5.2.2", False),
    ("rate_limited", "bounced", 554, "5.7.1", False),
    ("network", "bounced", None, "5.4.4", False),
    ("expired", "expired", None, None, False),
    ("filtered", "bounced", 550, "5.0.0", False),
    ("delivered", "sent", 250, "2.0.0", None),
])
def test_is_hard(reason, status, code, dsn, hard):
    assert is_hard(reason, status, code, dsn) is hard


def test_every_reason_has_a_scope_and_a_description():
    for name in REASONS:
        assert SCOPES[name] in ("recipient", "sender", "network", "unknown", "none")
        c = Classification(name, SCOPES[name], False)
        assert describe(c).startswith(name + " (")
    assert len({m.NAME for m in ORDER}) == len(ORDER)


def test_describe():
    c = classify("bounced", said("550 Unknown user taro@docomo.ne.jp", "RCPT TO"), dsn="5.0.0")
    assert describe(c) == "user_unknown (recipient, hard): the mailbox does not exist (the address's problem)"
    assert describe(classify("sent", "")).startswith("delivered (none)")


# ------------------------------------------------------------------ cache
def test_cache_key_ignores_addresses_ips_and_ids():
    a = "host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user taro.yamada@docomo.ne.jp (in reply to RCPT TO command)"
    b = "host mfsmax.docomo.ne.jp[203.138.181.240] said: 550 Unknown user \"hanako..x.\"@docomo.ne.jp (in reply to RCPT TO command)"
    assert normalise(a) == normalise(b)
    g1 = "host gmail-smtp-in.l.google.com[64.233.187.27] said: 550-5.1.1 The email account that you tried to reach does not exist. e22-n7GpZmsf093195.222 - gsmtp (in reply to RCPT TO command)"
    g2 = "host gmail-smtp-in.l.google.com[64.233.187.26] said: 550-5.1.1 The email account that you tried to reach does not exist. d9-20020a05622a1a0900b0042f3a8c1si123456qtb.44 - gsmtp (in reply to RCPT TO command)"
    assert normalise(g1) == normalise(g2)


def test_two_addresses_in_the_same_text_give_the_same_class_from_the_cache():
    cache_clear()
    first = classify("bounced", said("550 <taro@au.com>: User unknown", "RCPT TO"), dsn="5.0.0")
    second = classify("bounced", said("550 <hanako.sato_77@au.com>: User unknown", "RCPT TO"), dsn="5.0.0")
    assert first == second == Classification("user_unknown", "recipient", True)
    info = cache_info()
    assert info["quick"].hits == 1 and info["normalised"].misses == 1


def test_cache_keeps_the_empty_address_distinct():
    """au's '550 : User unknown' (filtered) must not share a key with '550 <x@au.com>: User unknown'."""
    empty = classify("bounced", "550 : User unknown", dsn="5.0.0")
    addressed = classify("bounced", "550 <taro@au.com>: User unknown", dsn="5.0.0")
    assert (empty.reason, addressed.reason) == ("filtered", "user_unknown")


def test_cache_keeps_other_arguments_apart():
    text = said("550 Unknown user taro@docomo.ne.jp", "RCPT TO")
    assert classify("bounced", text, smtp_phase="rcpt").reason == "user_unknown"
    assert classify("bounced", text, smtp_phase="end_of_data").reason == "filtered"
    assert classify("deferred", text).hard is False
    assert classify("bounced", text).hard is True


# ------------------------------------------------------------------ parse_reply
@pytest.mark.parametrize("text,expected", [
    ("host mx[1.2.3.4] said: 550 5.1.1 <a@b.jp>: Recipient address rejected (in reply to RCPT TO command)", (550, "5.1.1")),
    ("host mx[1.2.3.4] said: 550-5.7.26 This mail has been blocked", (550, "5.7.26")),
    ("host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user a@docomo.ne.jp (in reply to RCPT TO command)", (550, None)),
    ("host mx[1.2.3.4] refused to talk to me: 421 4.7.0 Too many connections", (421, "4.7.0")),
    ("1.2.3.4 does not like recipient./Remote host said: 553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)/Giving up on 1.2.3.4./", (553, "5.7.1")),
    ("Sorry, I couldn't find any host named nosuch.example. (#5.1.2)/", (None, "5.1.2")),
    ("550 <a@ezweb.ne.jp>: User unknown", (550, None)),
    ("Deferred: 421 4.7.0 Try again later", (421, "4.7.0")),
    ("connect to mx.example.jp[192.0.2.1]:25: Connection timed out", (None, None)),
    ("Giving up on 192.0.2.125.", (None, None)),
    ("", (None, None)),
    (None, (None, None)),
])
def test_parse_reply(text, expected):
    assert parse_reply(text) == expected


# ------------------------------------------------------------------ speed (smoke; the figure is in the docs)
def varied_events(n: int, seed: int = 7) -> list[tuple]:
    """n realistic, varied bounce/deferral events: carrier and big-provider replies with random
    addresses, MX IPs, queue ids and Google/Microsoft message ids."""
    rnd = random.Random(seed)
    word = lambda k: "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789._") for _ in range(k))  # noqa: E731
    ip = lambda: f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"  # noqa: E731
    gid = lambda: f"{word(3)}-{word(14)}.{rnd.randint(1, 999)}"  # noqa: E731
    typo_domains = [f"{word(6)}.example" for _ in range(200)]  # mistyped domains recur
    ms_servers = [f"TY{rnd.randint(1, 9)}PR01MB{rnd.randint(1000, 9999)}" for _ in range(300)]
    templates = [
        ("bounced", "5.0.0", 550, "rcpt", lambda: f"host mfsmax.docomo.ne.jp[{ip()}] said: 550 Unknown user {word(10)}@docomo.ne.jp (in reply to RCPT TO command)"),
        ("bounced", "5.0.0", 550, "end_of_data", lambda: f"host mfsmax.docomo.ne.jp[{ip()}] said: 550 Unknown user {word(10)}@docomo.ne.jp (in reply to end of DATA command)"),
        ("bounced", "5.0.0", 550, "rcpt", lambda: f"host msmx.au.com[{ip()}] said: 550 <{word(12)}@au.com>: User unknown (in reply to RCPT TO command)"),
        ("bounced", "5.0.0", 550, "end_of_data", lambda: f"host lsean.ezweb.ne.jp[{ip()}] said: 550 : User unknown (in reply to end of DATA command)"),
        ("bounced", "5.0.0", 550, "rcpt", lambda: f"host mx.softbank.ne.jp[{ip()}] said: 550 Invalid recipient: <{word(9)}@i.softbank.jp> (in reply to RCPT TO command)"),
        ("bounced", "5.0.0", 552, "data", lambda: f"host mfsmax.docomo.ne.jp[{ip()}] said: 552 Too much mail data {word(8)}@docomo.ne.jp (in reply to DATA command)"),
        ("deferred", "4.7.0", 421, "connect", lambda: f"host mx{rnd.randint(1, 4)}.example.com[{ip()}] refused to talk to me: 421 4.7.0 Too many concurrent SMTP connections from this IP"),
        ("deferred", "4.4.1", None, "connect", lambda: f"connect to mx{rnd.randint(1, 4)}.example.net[{ip()}]:25: Connection timed out"),
        ("bounced", "5.1.1", 550, "rcpt", lambda: f"host gmail-smtp-in.l.google.com[{ip()}] said: 550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. {gid()} - gsmtp (in reply to RCPT TO command)"),
        ("bounced", "5.7.26", 550, "end_of_data", lambda: f"host gmail-smtp-in.l.google.com[{ip()}] said: 550-5.7.26 Unauthenticated email from example.jp is not accepted due to domain's DMARC policy. {gid()} - gsmtp (in reply to end of DATA command)"),
        ("bounced", "5.4.1", 550, "rcpt", lambda: f"host example-jp.mail.protection.outlook.com[{ip()}] said: 550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [{rnd.choice(ms_servers)}.jpnprd01.prod.outlook.com {rnd.randint(10**9, 10**10)}] (in reply to RCPT TO command)"),
        ("bounced", "5.7.1", 554, "rcpt", lambda: f"host mx.example.org[{ip()}] said: 554 5.7.1 Service unavailable; Client host [{ip()}] blocked using zen.spamhaus.org (in reply to RCPT TO command)"),
        ("deferred", "4.2.2", 452, "rcpt", lambda: f"host mx.example.co.jp[{ip()}] said: 452 4.2.2 <{word(8)}@example.co.jp>: Mailbox full (in reply to RCPT TO command)"),
        ("bounced", "5.4.4", None, None, lambda: f"Host or domain name not found. Name service error for name={rnd.choice(typo_domains)} type=A: Host not found"),
    ]
    weights = [20, 8, 15, 6, 6, 3, 12, 8, 8, 2, 3, 3, 4, 2]
    out = []
    for status, dsn, code, phase, make in rnd.choices(templates, weights=weights, k=n):
        out.append((status, make(), dsn, code, phase))
    return out


def run_benchmark(events) -> float:
    cache_clear()
    t0 = time.perf_counter()
    for status, text, dsn, code, phase in events:
        classify(status=status, diagnostic=text, dsn=dsn, reply_code=code, smtp_phase=phase, carrier=None, mta="postfix")
    return time.perf_counter() - t0


def test_classify_is_fast_thanks_to_the_cache():
    events = varied_events(20_000)
    seconds = run_benchmark(events)
    info = cache_info()
    assert info["normalised"].misses < 200  # the phrase tables ran only for distinct shapes
    assert seconds < 5.0  # generous: a loaded CI box; the measured figure is in docs/classifier.md


def ingest_mix(n: int, sent_share: float = 0.85, seed: int = 11) -> list[tuple]:
    """A day of bulk mail: mostly accepted (status=sent), the rest as in varied_events()."""
    rnd = random.Random(seed)
    failures = iter(varied_events(n, seed))
    return [("sent", f"250 2.0.0 Ok: queued as {rnd.getrandbits(40):X}", "2.0.0", 250, "end_of_data")
            if rnd.random() < sent_share else next(failures) for _ in range(n)]


if __name__ == "__main__" and "--bench" in sys.argv:
    args = sys.argv[sys.argv.index("--bench") + 1:]
    n = int(args[0]) if args else 1_000_000
    for name, events in (("varied failures", varied_events(n)), ("ingest mix, 85% sent", ingest_mix(n))):
        best = min(run_benchmark(events) for _ in range(3))
        print(f"{name}: {n} events in {best:.2f} s (best of 3) = {best / n * 1e6:.2f} µs/event; {cache_info()}")


# ------------------------------------------------------------------ issue 18: provider data, dates, config
from datetime import date  # noqa: E402

from pipeline.classify.classifier import configure, explain  # noqa: E402
from pipeline.core.errors import ConfigError  # noqa: E402


@pytest.fixture
def package_tables():
    configure(None)
    yield
    configure(None)


def _after_data(text):
    return said(text, "end of DATA", "mx.example.net[192.0.2.7]")


@pytest.mark.parametrize("domain,relay,expected", [
    ("docomo.ne.jp", None, "filtered"),            # a reception filter, never a dead address
    ("au.com", None, "filtered"),
    ("yahoo.com", None, "user_unknown"),           # Yahoo checks users after DATA: dead
    (None, "mta6.am0.yahoodns.net[67.195.204.74]:25", "user_unknown"),
    ("example.net", None, "filtered"),             # unknown server: not proof without X.1.1
])
def test_unknown_user_after_data_reads_as_the_provider_data_says(package_tables, domain, relay, expected):
    c = classify("bounced", "554 delivery error: dd This user doesn't have an account", smtp_phase="end_of_data",
                 recipient_domain=domain, relay=relay)
    assert c.reason == expected


def test_docomo_after_data_is_never_dead_before_or_after_its_2025_03_13_change(package_tables):
    text = _after_data("550 Unknown user taro@docomo.ne.jp")
    for day in (date(2025, 3, 12), date(2025, 3, 13), date(2026, 12, 1), None):
        c, decision, ctx = explain("bounced", text, recipient_domain="docomo.ne.jp", day=day)
        assert (c.reason, c.scope) == ("filtered", "sender"), day
        assert ctx.provider.provider == "docomo"
    assert explain("bounced", text, recipient_domain="docomo.ne.jp", day=date(2025, 3, 12))[2].provider.until == date(2025, 3, 12)
    assert explain("bounced", text, recipient_domain="docomo.ne.jp", day=date(2025, 3, 13))[2].provider.since == date(2025, 3, 13)


def test_provider_behaviour_by_date_from_the_config(package_tables):
    """An operator records a provider that started checking users after DATA on a date."""
    configure({"providers": {"exampleisp": {"domains": ["example-isp.ne.jp"], "since": "2026-06-01",
                                            "unknown_user_after_data": "user_unknown", "note": "changed"}}})
    text = _after_data("550 <a@example-isp.ne.jp>: no such user")
    before = classify("bounced", text, recipient_domain="example-isp.ne.jp", day=date(2026, 5, 31))
    after = classify("bounced", text, recipient_domain="example-isp.ne.jp", day=date(2026, 6, 1))
    assert (before.reason, after.reason) == ("filtered", "user_unknown")
    # the caches are keyed by the provider period, not the domain: the same text, other periods
    assert classify("bounced", text, recipient_domain="sub.example-isp.ne.jp", day=date(2026, 7, 1)).reason == "user_unknown"


def test_config_phrases_extend_the_tables(package_tables):
    text = said("550 宛先のお客様は退会済みです", "RCPT TO")
    assert classify("bounced", text).reason == "undefined"
    configure({"phrases": {"mailbox_disabled": ["退会済み"]}})
    assert classify("bounced", text) == Classification("mailbox_disabled", "recipient", True)
    # the phase rule still applies to an operator's phrase
    assert classify("bounced", said("550 宛先のお客様は退会済みです", "MAIL FROM")).scope == "sender"


@pytest.mark.parametrize("settings,message", [
    ({"phrases": {"delivered": ["ok"]}}, "takes no phrases"),
    ({"providers": {"x": {"since": "2026-13-01", "unknown_user_after_data": "filtered"}}}, "YYYY-MM-DD"),
    ({"providers": {"x": {"unknown_user_after_data": "maybe"}}}, "unknown_user_after_data"),
    ({"providers": {"x": {"since": "2026-06-02", "until": "2026-06-01", "unknown_user_after_data": "filtered"}}}, "after until"),
])
def test_bad_classify_config_is_a_config_error(package_tables, settings, message):
    with pytest.raises(ConfigError, match=message):
        configure(settings)


@pytest.mark.parametrize("text,phase", [
    ("553 5.7.1 Sender address rejected: Account suspended", "MAIL FROM"),
    ("452 4.2.2 Sender mailbox quota exceeded", "MAIL FROM"),
    ("550 5.7.1 Your account has been disabled for sending spam", "MAIL FROM"),
    ("550 5.1.1 <news@mail.example.jp>... User unknown", "MAIL FROM"),
    ("554 5.2.2 Mailbox full", "MAIL FROM"),
])
def test_no_recipient_reason_before_rcpt(text, phase):
    assert classify("bounced", said(text, phase)).scope == "sender"


@pytest.mark.parametrize("text", [
    "554 5.7.1 <a@example.co.jp>: Recipient address rejected: Access denied",
    "550 5.7.1 <a@example.co.jp>: Recipient address rejected: Mail from your region is not accepted",
    "450 4.7.1 <a@example.co.jp>: Recipient address rejected: Try again later",
    "550 5.7.1 Requested action not taken: mailbox unavailable",
    "550 5.7.1 Mailbox full, policy",
])
def test_an_x7_code_beats_generic_recipient_wording(text):
    c = classify("bounced", said(text, "RCPT TO"))
    assert c.scope == "sender", c


def test_microsoft_5_4_1_access_denied_is_an_unknown_user():
    for text in ("550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [TY1PR01MB1234.jpnprd01.prod.outlook.com 2026-12-03T01:15:02.123Z]",
                 "550 5.4.1 [a@example.org]: Recipient address rejected: Access denied [NEKO.prod.protection.outlook.com]"):
        assert classify("bounced", said(text, "RCPT TO")).reason == "user_unknown"


@pytest.mark.parametrize("text,dsn,reason", [
    ("Name service error for name=example.org type=MX: Malformed or unexpected name server reply", "5.4.4", "network"),
    ("Host or domain name not found. Name service error for name=example.org type=MX: Malformed or unexpected name server reply", "5.4.4", "network"),
    ("Not enough disk space", "5.1.1", "mailbox_full"),
    ("procmail: Couldn't create \"/var/spool/mail/neko\" id: r.example.org: No such user", "5.1.1", "system"),
])
def test_network_and_system_words_beat_a_counted_code(text, dsn, reason):
    assert classify("bounced", text, dsn=dsn, mta="postfix").reason == reason


@pytest.mark.parametrize("text,status", [
    ("452-4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", "deferred"),
    ("550-5.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", "bounced"),
    ("450-4.2.1 The user you are trying to contact is receiving mail too quickly.", "deferred"),
])
def test_gmail_rate_limits_are_not_disabled_mailboxes(text, status):
    assert classify(status, said(text + " e22-n7GpZmsf093195.222 - gsmtp", "RCPT TO")).reason == "rate_limited"


@pytest.mark.parametrize("reply,reason", [
    ("550 指定されたメールアドレスは存在しません", "user_unknown"),
    ("552 メールボックスの容量がいっぱいです", "mailbox_full"),
    ("550 このメールアドレスは現在利用停止中です", "mailbox_disabled"),
    ("550 ﾕｰｻﾞｰが存在しません", "user_unknown"),  # half-width katakana: NFKC
])
def test_japanese_replies_in_postfix_and_sendmail_shapes(reply, reason):
    octal = "".join(c if ord(c) < 128 else "".join(f"\\{b:03o}" for b in c.encode()) for c in reply)
    assert classify("bounced", said(reply, "RCPT TO"), mta="postfix").reason == reason
    assert classify("bounced", octal, dsn="5.1.1", smtp_phase="rcpt", mta="sendmail").reason == reason
    # (qmail-send logs every byte outside printable ASCII as "_": no Japanese words reach its log)


@pytest.mark.parametrize("stat,dsn,phase,reason", [
    ("Service unavailable", "5.2.2", None, "mailbox_full"),
    ("User unknown", "5.1.1", "rcpt", "user_unknown"),
    ("User unknown", "5.1.6", "rcpt", "mailbox_disabled"),
    ("User unknown", "5.1.3", "rcpt", "syntax"),
    ("Service unavailable", "5.2.0", "end_of_data", "undefined"),
    ("Service unavailable", "5.0.0", None, "undefined"),
    ("Data format error", "5.1.3", "mail", "sender_domain"),
])
def test_sendmail_bare_dsn_by_what_sendmail_synthesises(stat, dsn, phase, reason):
    assert classify("bounced", stat, dsn=dsn, smtp_phase=phase, mta="sendmail").reason == reason


@pytest.mark.parametrize("dsn,reason", [("5.1.1", "user_unknown"), ("5.1.2", "host_unknown"), ("5.2.1", "mailbox_disabled"),
                                         ("5.2.2", "mailbox_full"), ("5.7.1", "policy"), ("5.0.0", "undefined")])
def test_bare_dsn_by_rfc3463_for_postfix_and_qmail(dsn, reason):
    assert classify("bounced", said(f"550 {dsn}", "RCPT TO"), dsn=dsn, mta="postfix").reason == reason
    assert classify("bounced", f"192.0.2.1 does not like recipient./Remote host said: 550 {dsn}/", mta="qmail").reason == reason


def test_explain_names_the_rule():
    c, d, _ = explain("bounced", said("554 5.7.1 <a@b.jp>: Recipient address rejected: Access denied", "RCPT TO"))
    assert (c.reason, d.rule, d.evidence) == ("policy", "code", "5.7.1")
    assert any("yields to the words that follow it" in n for n in d.notes)
    c, d, _ = explain("bounced", said("550 5.7.1 <a@b.jp>: Recipient address rejected", "RCPT TO"))
    assert (c.reason, d.rule, d.evidence) == ("policy", "code", "5.7.1")
    assert any("yield to the code" in n for n in d.notes)
    c, d, _ = explain("bounced", said("550 Unknown user a@docomo.ne.jp", "end of DATA"), recipient_domain="docomo.ne.jp")
    assert (c.reason, d.rule) == ("filtered", "provider")


def test_provider_key_is_small_and_shared_by_a_providers_domains(package_tables):
    from pipeline.classify import provider_key
    assert provider_key("docomo.ne.jp", day=date(2026, 1, 1)) == provider_key("x.docomo.ne.jp", day=date(2026, 1, 2))
    assert provider_key("docomo.ne.jp", day=date(2025, 1, 1)) != provider_key("docomo.ne.jp", day=date(2026, 1, 1))
    assert provider_key("example.net") is None and provider_key() is None


# ------------------------------------------------------------------ issue 18, second round: families
@pytest.mark.parametrize("reply,command,reason", [
    # user_unknown's generic prefix yields to the words after it (no enhanced code to decide)
    ("550 <a@b.jp>: Recipient address rejected: Access denied", "RCPT TO", "policy"),
    ("550 <a@b.jp>: Recipient address rejected: Mail from your region is not accepted", "RCPT TO", "policy"),
    ("450 <a@b.jp>: Recipient address rejected: Try again later", "RCPT TO", "rate_limited"),
    ("550 <a@b.jp>: Recipient address rejected: only internal senders are permitted", "RCPT TO", "undefined"),
    ("550 <a@b.jp>: Recipient address rejected.", "RCPT TO", "user_unknown"),
    ("550 Requested action not taken: mailbox unavailable", "RCPT TO", "user_unknown"),
    ("550 Requested action not taken: mailbox unavailable (access denied)", "RCPT TO", "policy"),
    ("450 4.1.1 <a@b.jp>: Recipient address rejected: unverified address: Address verification in progress",
     "RCPT TO", "system"),
    # "no valid recipients" says the recipient was refused, not why
    ("554 5.5.1 Error: no valid recipients", "DATA", "undefined"),
    # a refusal of us is not a domain without mail; a domain without mail is one at the greeting too
    ("550 This server does not accept mail from your IP address", "RCPT TO", "blocked"),
    ("550 We do not accept mail from mail.example.jp", "RCPT TO", "filtered"),
    # quotas that are not the mailbox's
    ("452 4.3.1 Connection quota exceeded, try again later", "RCPT TO", "rate_limited"),
    ("552 5.2.2 Mailbox quota exceeded", "RCPT TO", "mailbox_full"),
    # the server's X.1.3 reads "Invalid address" as malformed
    ("553 5.1.3 <a..b@b.jp>... Invalid address", "RCPT TO", "syntax"),
    ("550 5.1.1 <a@b.jp>... Invalid address", "RCPT TO", "user_unknown"),
    # mailbox-state wordings
    ("550 a@b.jp is unavailable: user is terminated", "RCPT TO", "mailbox_disabled"),
    ("550 Recipient rejected: Temporarily inactive", "RCPT TO", "mailbox_disabled"),
])
def test_second_round_families(reply, command, reason):
    assert classify("bounced" if reply[0] == "5" else "deferred", said(reply, command), mta="postfix").reason == reason


def test_521_greeting_of_a_domain_without_mail_counts_but_not_a_refusal_of_us():
    text = "host mx.b.jp[192.0.2.1] refused to talk to me: 521 5.3.2 mx.b.jp does not accept mail"
    assert classify("bounced", text, dsn="5.3.2", mta="postfix") == ("host_unknown", "recipient", True)
    text = "host mx.b.jp[192.0.2.1] refused to talk to me: 554 mx.b.jp does not accept mail from you"
    assert classify("bounced", text, dsn="5.0.0", mta="postfix").reason == "blocked"


def test_sendmail_dsn_decides_only_without_the_remotes_words():
    # no reply= (older sendmail): dsn= is all there is
    assert classify("bounced", "User unknown", dsn="5.1.1", mta="sendmail").reason == "user_unknown"
    # reply= without a reason: sendmail's 5.1.1 for any 550 at RCPT adds nothing (as for Postfix)
    c, d, _ = explain("bounced", "550 Rejected", dsn="5.1.1", reply_code=550, smtp_phase="rcpt", mta="sendmail")
    assert c.reason == "undefined" and any("own mapping" in n for n in d.notes)
    assert classify("bounced", said("550 Rejected", "RCPT TO"), dsn="5.0.0", mta="postfix").reason == "undefined"
    # a real MX's enhanced code copied into dsn= (ENHANCEDSTATUSCODES) reads like the reply's code
    assert classify("bounced", "550 5.7.1 <a@b.jp>: Recipient address rejected: Access denied", dsn="5.7.1",
                    reply_code=550, smtp_phase="rcpt", mta="sendmail").reason == "policy"


def test_qmail_giving_up_framing_is_no_blocklist():
    text = ("192.0.2.1_does_not_like_recipient./Remote_host_said:_550_<a@b.jp>:_Recipient_address_rejected:"
            "_not_listed_in_our_directory/Giving_up_on_192.0.2.1./")
    assert classify("bounced", text, mta="qmail").reason == "user_unknown"
    assert "giving up" not in normalise(text)


@pytest.mark.parametrize("reply,reason", [
    ("552 5.2.2 Mailbox size limit exceeded", "mailbox_full"),     # the mailbox's size, not the message's
    ("552 5.3.4 Message size exceeds fixed limit", "mesg_too_big"),
    ("550 5.1.7 Sender address invalid", "sender_domain"),       # never "invalid address" of the recipient
    ("553 sorry, your envelope recipient has been denied (#5.7.1)", "user_unknown"),
    ("550 5.7.1 <a@b.jp>: Recipient address rejected: Sorry, the recipient is not found", "user_unknown"),
])
def test_wordings_from_sisimai_reason_lists(reply, reason):
    assert classify("bounced", said(reply, "RCPT TO"), mta="postfix").reason == reason


# Found by probing with providers' real wordings (Gmail, Microsoft): sender-side refusals whose
# code alone read as another reason.
@pytest.mark.parametrize("reply,command,reason", [
    # Gmail 5.4.5 (X.4.x reads as network): our sending limit
    ("550-5.4.5 Daily user sending limit exceeded. For more information on Gmail 550-5.4.5 sending limits, "
     "go to 550 5.4.5  https://support.google.com/a/answer/166852 d9443c01a7336-1f6f.123 - gsmtp", "DATA",
     "rate_limited"),
    # Gmail 421 4.3.0: a bare 421 reads as rate_limited; the words say the server's own trouble
    ("421-4.3.0 Temporary System Problem.  Try again later (10). d9443c01a7336-1f6f.123 - gsmtp",
     "end of DATA", "system"),
    # Microsoft 5.7.708 (X.7.x reads as policy): our IP is refused
    ("550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP. For more information "
     "please go to http://go.microsoft.com/fwlink/?LinkId=526653 AS(7)", "MAIL FROM", "blocked"),
])
def test_provider_wordings_of_refusals_of_us(reply, command, reason):
    status = "bounced" if reply[0] == "5" else "deferred"
    assert classify(status, said(reply, command), mta="postfix").reason == reason


# Replies in other languages without an enhanced code: the words alone must say it.
@pytest.mark.parametrize("reply,reason", [
    ("550 收件人不存在", "user_unknown"),
    ("550 Utente sconosciuto", "user_unknown"),
    ("550 Destinataire inconnu", "user_unknown"),
    ("550 Benutzer unbekannt", "user_unknown"),
    ("552 收件人邮箱已满", "mailbox_full"),
    ("552 Boîte aux lettres pleine", "mailbox_full"),
    ("552 Postfach voll", "mailbox_full"),
])
def test_other_languages_without_a_code(reply, reason):
    assert classify("bounced", said(reply, "RCPT TO"), dsn="5.0.0", mta="postfix").reason == reason
