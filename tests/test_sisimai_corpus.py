"""Agreement with Sisimai's labelled public corpus (562 bounce diagnostics).

Reads ../shared/corpus/public/sisimai-diagnostics/diagnostics.tsv (or $MAILHYGIENE_SHARED/corpus/...);
skips when it is absent. Run with `-s` to see the per-reason agreement table (docs/classifier.md
records the figures).

What the classifier is given per row, and why:
- diagnostic: Sisimai 4.25's extracted text, as is;
- dsn: the row's status, except Sisimai's pseudo codes (X.0.9xx, which encode Sisimai's own
  verdict) which are reduced to their class (X.0.0, as Postfix would synthesise);
- reply_code: the table's reply code; smtp_phase: from smtp_command (DATA -> end_of_data when the
  text says "end of DATA", else data); status: "expired" for a 4.x.x status, else "bounced";
- mta: postfix/sendmail/qmail for those engines' samples (sendmail's dsn is its own mapping);
- recipient_domain and relay (rhost): who answered, as a log line gives them (provider data).

The yardstick is the counted verdict (scope recipient and a reason the rule counts by default);
every row where ours differs from Sisimai's is pinned in COUNTED_DIFFERENCES with the reason we
disagree (docs/classifier.md lists them), so a new difference, or a fixed one, fails the test.
"""

from __future__ import annotations

import csv
import os
from collections import Counter, defaultdict

from pipeline.classify.classifier import classify
from pipeline.core.config import RuleSettings

from fixtures import corpus_path

# Sisimai reason -> the reasons of ours that mean the same thing.
SISIMAI_TO_OURS: dict[str, frozenset[str]] = {
    "userunknown": frozenset({"user_unknown"}),
    "hostunknown": frozenset({"host_unknown"}),
    "notaccept": frozenset({"host_unknown"}),          # null MX / 556: the domain takes no mail
    "mailboxfull": frozenset({"mailbox_full"}),
    "suspend": frozenset({"mailbox_disabled"}),
    "hasmoved": frozenset({"mailbox_disabled"}),
    "filtered": frozenset({"filtered"}),
    "toomanyconn": frozenset({"rate_limited", "too_many_recipients"}),  # Sisimai files docomo's 552 here
    "speeding": frozenset({"rate_limited"}),
    "blocked": frozenset({"blocked"}),
    "badreputation": frozenset({"blocked"}),
    "rejected": frozenset({"sender_domain"}),
    "spamdetected": frozenset({"spam"}),
    "virusdetected": frozenset({"spam"}),
    "policyviolation": frozenset({"policy"}),
    "authfailure": frozenset({"auth"}),
    "requireptr": frozenset({"auth"}),
    "securityerror": frozenset({"auth"}),
    "networkerror": frozenset({"network"}),
    "expired": frozenset({"expired"}),
    "systemerror": frozenset({"system"}),
    "systemfull": frozenset({"system"}),
    "mailererror": frozenset({"system"}),
    "syntaxerror": frozenset({"syntax"}),
    "norelaying": frozenset({"syntax"}),
    "mesgtoobig": frozenset({"mesg_too_big"}),
    "exceedlimit": frozenset({"mesg_too_big"}),
    "contenterror": frozenset({"content"}),
    "notcompliantrfc": frozenset({"content"}),
    "onhold": frozenset({"undefined"}),
    "undefined": frozenset({"undefined"}),
}

# Floors a few points below what the classifier reaches (see docs/classifier.md).
MIN_REASON_AGREEMENT = 0.80
MIN_HARD_AGREEMENT = 0.88
MIN_COUNTED_AGREEMENT = 0.939

SISIMAI_COUNTED = frozenset({"userunknown", "hostunknown", "notaccept", "suspend", "hasmoved", "mailboxfull"})
OURS_COUNTED = frozenset(RuleSettings().counted_reasons)

_NO_PHASE = ("Sisimai: 'filtered' for unknown-user words without an SMTP command (its bounce parser's verdict, 5.0.910); "
             "the text does not show the phase and Sisimai labels the same wordings userunknown in 27 other phase-less rows: "
             "we count the words")
_POSTFIX_RCPT = ("Postfix says 'User unknown in local recipient table' only at RCPT TO (smtpd's local_recipient_maps): "
                 "the text shows the phase; Sisimai: 'filtered' for want of an SMTP command")
_GMAIL_RCPT = ("Gmail's 'The email account that you tried to reach does not exist' is its RCPT TO answer (550-5.1.1): "
               "a dead address; Sisimai: 'filtered' for want of an SMTP command")
_X21 = "X.2.1 (mailbox disabled) with 'User Unknown': both say the mailbox takes no mail; Sisimai reads X.2.1 as filtered"
_X71_WORDS = "explicit unknown-user words survive a 5.7.x code (issue 18 rule 1); Sisimai: filtered"
_TRANSCRIPT = "the transcript shows the refusal at RCPT TO ('Need RCPT', 'no valid recipients'); Sisimai reads the last command (DATA) as filtered"
_SES_RULE = ("explicit 5.1.1 'Mailbox does not exist'; Sisimai: filtered (the default text of an SES receipt rule's Bounce "
             "action, a bounce message SES sends after accepting the mail, so it never reaches an MTA log as a refusal)")
_NO_EVIDENCE = "nothing in the text says the address is dead (Sisimai's verdict comes from the bounce's structure, 5.0.911/5.0.912)"
# sample -> (rows, Sisimai counts it?, why we disagree)
COUNTED_DIFFERENCES: dict[str, tuple[int, bool, str]] = {
    "lhost-activehunter-02": (1, False, _POSTFIX_RCPT),
    "lhost-apachejames-01": (1, False, _NO_PHASE),
    "lhost-exchange2003-04": (1, False, _NO_PHASE),
    "lhost-mailfoundry-01": (1, False, _NO_PHASE),
    "lhost-mxlogic-03": (1, False, _NO_PHASE),
    "lhost-postfix-07": (1, False, _NO_PHASE),
    "lhost-surfcontrol-01": (1, False, _NO_PHASE),
    "lhost-zoho-03": (1, False, _NO_PHASE),
    "lhost-x1-01": (1, False, _NO_PHASE),
    "lhost-x1-02": (1, False, _NO_PHASE),
    "lhost-x2-01": (1, False, _NO_PHASE),
    "lhost-x2-02": (2, False, _NO_PHASE),
    "rfc3464-35": (1, False, _NO_PHASE),
    "rfc3464-42": (1, False, _GMAIL_RCPT),
    "lhost-amazonworkmail-02": (1, False, _X21),
    "lhost-messagingserver-06": (1, False, _X21),
    "lhost-zoho-02": (1, False, _X21),
    "lhost-messagingserver-03": (2, False, _X71_WORDS),
    "lhost-sendmail-48": (1, False, _X71_WORDS + "; " + _TRANSCRIPT),
    "lhost-sendmail-27": (1, False, _TRANSCRIPT),
    "lhost-receivingses-01": (1, False, _SES_RULE),
    "lhost-receivingses-02": (1, False, _SES_RULE),
    "lhost-exim-30": (1, True, "554 5.7.1 'Recipient address rejected: Access denied' is a policy refusal (issue 18 rule 1); Sisimai: userunknown"),
    "lhost-amazonses-19": (1, True, "5.7.1 with 'temporary locked': a policy code and a temporary lock, no unknown-user words; Sisimai: suspend"),
    "lhost-aol-06": (1, True, "'Malformed or unexpected name server reply' is DNS trouble, not a dead domain (issue 18 rule 6); Sisimai: notaccept"),
    "lhost-domino-02": (1, True, "the text is mojibake (UTF-8 read as Latin-1, bytes lost): no words left to read"),
    "lhost-notes-02": (1, True, "the text is mojibake (UTF-8 read as Latin-1, bytes lost): no words left to read"),
    "lhost-interscanmss-02": (1, True, _NO_EVIDENCE),
    "lhost-interscanmss-03": (1, True, _NO_EVIDENCE),
    "lhost-messagelabs-03": (1, True, _NO_EVIDENCE + " ('542 ... Rejected')"),
    "lhost-exim-31": (1, True, "a hedge ('may not exist, they may be blacklisted'): not proof; the blocklist words make it ours"),
    "lhost-exim-37": (1, True, "'553 <domain> does not exist' after end of DATA: the recipient was accepted, the domain named may be ours"),
}

_PHASES = {"RCPT": "rcpt", "MAIL": "mail", "EHLO": "helo", "HELO": "helo", "QUIT": "quit", "CONN": "connect"}


def load_rows() -> list[dict]:
    path = corpus_path("sisimai-diagnostics", "diagnostics.tsv")
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def event_args(row: dict) -> dict:
    status = row["status"] or ""
    parts = status.split(".")
    dsn = status or None
    if len(parts) == 3 and parts[1] == "0" and parts[2].isdigit() and int(parts[2]) >= 900:
        dsn = f"{parts[0]}.0.0"  # Sisimai's pseudo code: keep only the class
    command = row["smtp_command"]
    diagnostic = row["diagnostic"]
    if command == "DATA":
        phase = "end_of_data" if "end of data" in diagnostic.lower() else "data"
    else:
        phase = _PHASES.get(command)
    engine = row["sample"].split("-")[1] if row["sample"].startswith("lhost-") else ""
    return dict(
        status="expired" if status.startswith("4") else "bounced",
        diagnostic=diagnostic,
        dsn=dsn,
        reply_code=int(row["reply_code"]) if row["reply_code"] else None,
        smtp_phase=phase,
        mta=engine if engine in ("postfix", "sendmail", "qmail") else None,
        recipient_domain=row["recipient_domain"] or None,
        relay=row["rhost"] or None,
    )


def evaluate(rows: list[dict]):
    per_reason: dict[str, Counter] = defaultdict(Counter)
    confusion: Counter = Counter()
    agree = hard_agree = 0
    misses = []
    for row in rows:
        expected = row["expected_reason"]
        c = classify(**event_args(row))
        ok = c.reason in SISIMAI_TO_OURS[expected]
        hard_ok = bool(c.hard) == (row["hardbounce"] == "1")
        agree += ok
        hard_agree += hard_ok
        per_reason[expected]["rows"] += 1
        per_reason[expected]["agree"] += ok
        per_reason[expected]["hard_agree"] += hard_ok
        confusion[(expected, c.reason)] += 1
        if not ok:
            misses.append((row["sample"], expected, c.reason, row["diagnostic"][:160]))
    return agree / len(rows), hard_agree / len(rows), per_reason, confusion, misses


def format_table(per_reason, confusion) -> str:
    lines = ["| Sisimai reason | ours | rows | agree | % | hard/soft agree | what we said instead |",
             "|---|---|---|---|---|---|---|"]
    for reason, c in sorted(per_reason.items(), key=lambda kv: (-kv[1]["rows"], kv[0])):
        others = Counter({ours: n for (exp, ours), n in confusion.items()
                          if exp == reason and ours not in SISIMAI_TO_OURS[reason]})
        instead = ", ".join(f"{o} {n}" for o, n in others.most_common(4))
        lines.append(
            f"| {reason} | {'/'.join(sorted(SISIMAI_TO_OURS[reason]))} | {c['rows']} | {c['agree']} | "
            f"{100 * c['agree'] / c['rows']:.0f} | {c['hard_agree']} | {instead} |"
        )
    return "\n".join(lines)


def test_every_sisimai_reason_is_mapped():
    rows = load_rows()
    assert {r["expected_reason"] for r in rows} <= set(SISIMAI_TO_OURS)


def test_agreement_with_sisimai_corpus():
    rows = load_rows()
    overall, hard, per_reason, confusion, misses = evaluate(rows)
    print()
    print(format_table(per_reason, confusion))
    print(f"\nrows {len(rows)}: reason agreement {overall:.1%}, hard/soft agreement {hard:.1%}")
    if os.environ.get("MAILHYGIENE_SHOW_MISSES"):
        for m in misses:
            print(*m, sep=" | ")
    assert overall >= MIN_REASON_AGREEMENT
    assert hard >= MIN_HARD_AGREEMENT


def counted_differences(rows: list[dict]) -> Counter:
    out: Counter = Counter()
    for row in rows:
        c = classify(**event_args(row))
        ours = c.scope == "recipient" and c.reason in OURS_COUNTED
        theirs = row["expected_reason"] in SISIMAI_COUNTED
        if ours != theirs:
            out[(row["sample"], theirs)] += 1
    return out


def counted_confusion(rows: list[dict]) -> Counter:
    """(Sisimai counts it?, ours counts it?) -> rows."""
    out: Counter = Counter()
    for row in rows:
        c = classify(**event_args(row))
        out[(row["expected_reason"] in SISIMAI_COUNTED, c.scope == "recipient" and c.reason in OURS_COUNTED)] += 1
    return out


def test_counted_verdict_agreement_and_every_difference_explained():
    rows = load_rows()
    diff = counted_differences(rows)
    agreement = 1 - sum(diff.values()) / len(rows)
    print(f"\ncounted-verdict agreement: {len(rows) - sum(diff.values())}/{len(rows)} = {agreement:.1%}")
    cc = counted_confusion(rows)
    print("| Sisimai \\ ours | counted | not counted |\n|---|---|---|")
    for theirs in (True, False):
        print(f"| {'counted' if theirs else 'not counted'} | {cc[(theirs, True)]} | {cc[(theirs, False)]} |")
    assert cc[(True, False)] + cc[(False, True)] == sum(diff.values())
    pinned = Counter({(sample, theirs): n for sample, (n, theirs, _) in COUNTED_DIFFERENCES.items()})
    assert diff == pinned, (f"new: {sorted((diff - pinned).elements())}; gone: {sorted((pinned - diff).elements())}")
    assert agreement >= MIN_COUNTED_AGREEMENT


def test_carrier_rows_agree():
    """Rows to Japanese carrier domains or through docomo's MX: the ones this tool is for."""
    carrier_domains = ("docomo.ne.jp", "ezweb.ne.jp", "au.com", "uqmobile.jp", "softbank.ne.jp",
                       "y-mobile.ne.jp", "ymobile.ne.jp", "rakumail.jp")
    rows = [r for r in load_rows()
            if r["recipient_domain"].endswith(carrier_domains) or "docomo" in r["rhost"]]
    assert len(rows) >= 30
    overall, _, _, _, misses = evaluate(rows)
    assert overall >= 0.8, misses
