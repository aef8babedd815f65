"""The classifier's fast paths held to their definitions.

- mask_addresses (RE2 patterns over an Arrow column: addresses, bracketed IPs) may only mask what
  _quick_normalise masks the same way: _quick_normalise(masked) == _quick_normalise(text) for
  every text, so classify() gives the masked text the text's verdict. Checked on the labelled
  set's lines, Sisimai's corpus (when ../shared is there), realistic generated replies (Japanese,
  ISO-2022-JP runs, several addresses, quoted local parts, SMTPUTF8) and random strings over the
  characters that matter (brackets among them). The compiled mask (native.SCANNER.mask_addresses,
  what ingest's annotate runs) gives the patterns' output on the same texts and on random strings
  over every ASCII character and the non-ASCII spaces.
- classify_many(columns) == [classify(...) for each event], on events that exercise every
  provider, every period boundary (the day before, on, and after each since/until), every
  carrier, relays, missing fields and every MTA; so is classify_by_key(...) given the event's
  provider_key(recipient domain, relay, carrier, day) in place of those four.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.classify import classify, classify_by_key, classify_many, mask_addresses, provider_key
from pipeline.classify.carriers import default_table
from pipeline.classify.classifier import _quick_normalise, tables
from pipeline.ingest import native

from fixtures import optional_corpus_path

LABELLED = Path(__file__).with_name("labelled_bounces.tsv")

_LOCALS = ["taro", "k.yamada", "mm156594", "hanako.1985", "a+tag", "x", "user_name", "o'brien", "\"john doe\"",
           "名前", "ユーザー", "a..b", "-", "=?utf-8?", "user%host", "bounce-12345=list"]
_DOMAINS = ["docomo.ne.jp", "ezweb.ne.jp", "au.com", "i.softbank.jp", "yahoo.co.jp", "gmail.com", "x",
            "例え.jp", "mail.example.co.jp.", "[192.0.2.1]", "sub_domain.example", "EXAMPLE.JP"]
_FRAMES = [
    "550 5.1.1 <{a}>: User unknown",
    "550 Unknown user {a}",
    "host mfsmax.docomo.ne.jp[203.138.181.112] said: 550 Unknown user {a} (in reply to end of DATA command)",
    "host mx.example.jp[192.0.2.1] said: 550 5.1.1 <{a}>: Recipient address rejected: User unknown in "
    "local recipient table (in reply to RCPT TO command)",
    "Deferred: 450 4.2.0 <{a}>: Recipient address rejected: Greylisted",
    "{a} does not like recipient.\nRemote host said: 550 5.1.1 <{a}>: User unknown\nGiving up on 192.0.2.1.",
    "203.138.181.240_does_not_like_recipient./Remote_host_said:_550_Unknown_user_{a}/Giving_up_on_203.138.181.240./",
    "550 このアドレス {a} へのメールはお届けできません",
    "552 5.2.2 {a}... Mailbox full",
    "550-5.1.1 The email account that you tried to reach does not exist. {a} e22-n7GpZmsf093195.222 - gsmtp",
    "553 5.1.3 <{a}>... Invalid address",
    "550 '{a}' mailbox unavailable; \"{a}\" (from {a})",
    "{a},{a};{a}:{a}/{a}",
    "\t{a}\x0b{a}\x1c{a}\u3000{a}",
    "<{a}> <{a}>",
]
_RANDOM_CHARS = "ab x@@@\"\"<>[]()' ,;:/.\t\n\x0b\x1c\u3000_-+é名1"


def _address(rng: random.Random) -> str:
    return f"{rng.choice(_LOCALS)}@{rng.choice(_DOMAINS)}"


def _generated_texts(n: int, seed: int = 13) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        frame = rng.choice(_FRAMES)
        texts.append(frame.replace("{a}", "\0").replace("\0", "{}").format(
            *(_address(rng) for _ in range(frame.count("{a}")))))
    for _ in range(n):
        texts.append("".join(rng.choice(_RANDOM_CHARS) for _ in range(rng.randrange(0, 40))))
    return texts


_KANA = ([chr(c) for c in range(0x3041, 0x3094)] + [chr(c) for c in range(0x30A1, 0x30F5)]
         + list("宛先不明存在受信拒否容量超過一時的迷惑配信指定見認証制限者送使用期限切解約済"))


def _jis_texts(n: int, seed: int = 19) -> list[str]:
    """Replies with an ISO-2022-JP run (as Postfix, sendmail, rsyslog or nothing render its ESC)
    and an address: the run's byte pairs hold '@' and separators ("?$B%Z$e%6$7%.$Q;X%@G[?(B")."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        words = "".join(rng.choice(_KANA) for _ in range(rng.randrange(1, 12)))
        run = words.encode("iso2022_jp").decode("ascii").replace("\x1b", rng.choice(["?", "\\033", "#033", "\x1b"]))
        texts.append(rng.choice(["550 5.1.1 {r} {a}", "550 {a}: {r}", "{r}"]).format(r=run, a=_address(rng)))
    return texts


def _real_texts() -> list[str]:
    texts = []
    with open(LABELLED, encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            log = line.rstrip("\n").split("\t")[-1]
            for part in log.split(" ⏎ "):
                texts.append(part)
                if "status=" in part:
                    texts.append(part[part.index("status=") :])
    corpus = optional_corpus_path("sisimai-diagnostics", "diagnostics.tsv")
    if corpus is not None:
        with open(corpus, encoding="utf-8") as fh:
            for line in fh:
                texts.extend(line.rstrip("\n").split("\t"))
    return texts


def _assert_mask_keeps_quick(texts: list[str]) -> int:
    masked = mask_addresses(pa.array(texts, pa.string())).to_pylist()
    for text, m in zip(texts, masked):
        assert _quick_normalise(m) == _quick_normalise(text), (text, m)
    return sum(t != m for t, m in zip(texts, masked))


def test_mask_keeps_what_classify_sees_on_real_lines():
    texts = _real_texts()
    assert _assert_mask_keeps_quick(texts) > 300  # the labelled lines name their recipients


def test_mask_keeps_what_classify_sees_on_generated_texts():
    texts = _generated_texts(20_000) + _jis_texts(5_000)
    changed = _assert_mask_keeps_quick(texts)
    assert changed > 5_000


def test_mask_leaves_texts_with_an_iso2022jp_run():
    """A token inside an ISO-2022-JP run is no address: masked, it changed the decoded text
    (`?$B(ab@cd)?(B` -> `?$B(x@x)?(B` decodes otherwise), so such a text is left whole."""
    texts = ["550 ?$B(ab@cd)?(B x", "550 ?$B:aa@bb:?(B", "550 5.1.1 ?$B%c%-$<L@H]%*%:%O%:?(B user@example.jp",
             "550 \x1b$@(ab@cd)\x1b(B"] + _jis_texts(5_000)
    masked = mask_addresses(pa.array(texts, pa.string())).to_pylist()
    assert masked == texts
    assert mask_addresses(pa.array(["a@b $A c@d", "$ a@b"])).to_pylist() == ["x@x $A x@x", "$ x@x"]


_BRACKET_CHARS = "[[]]]...::1290afAFgx@ \"$B"


def _bracket_texts(n: int, seed: int = 29) -> list[str]:
    """Random strings over what the bracketed-IP mask and _quick_normalise's bracket loop read."""
    rng = random.Random(seed)
    return ["".join(rng.choice(_BRACKET_CHARS) for _ in range(rng.randrange(0, 30))) for _ in range(n)]


def test_mask_writes_the_bracketed_ips_the_normaliser_reaches():
    texts = ["host mx.example.jp[192.0.2.1] said: 550 5.1.1 <taro@docomo.ne.jp>: User unknown",
             "host mx[2001:db8::1] said: 550 x", "[1.2.3.4][5.6.7.8]", "[x]]y[1.2.3.4] [a][::1]", "[[1.2.3.4]",
             "a [1.2.3.4] \"q [1.2.3.4]\"@x", "?$B[1.2.3.4]?(B", "[.] [..] [ab] [1.2.3.4", "]]x[::1]"]
    assert mask_addresses(pa.array(texts, pa.string())).to_pylist() == [
        "host mx.example.jp[ip] said: 550 5.1.1 <x@x>: User unknown",
        "host mx[ip] said: 550 x",
        "[ip][5.6.7.8]",                   # the next match needs another ']' first
        "[x]]y[ip] [a][ip]",
        "[[1.2.3.4]",                      # the loop reads "[[1.2.3.4]" as one bracket
        "a [1.2.3.4] \"q [1.2.3.4]\"@x",    # a '"': left
        "?$B[1.2.3.4]?(B",                 # an ISO-2022-JP run: left
        "[.] [ip] [ab] [1.2.3.4",          # one character: left (the mask never lengthens a text)
        "]]x[ip]"]
    for text, m in zip(texts, mask_addresses(pa.array(texts, pa.string())).to_pylist()):
        assert _quick_normalise(m) == _quick_normalise(text), (text, m)


def test_bracket_mask_keeps_what_classify_sees_on_random_texts():
    texts = _bracket_texts(50_000)
    assert _assert_mask_keeps_quick(texts) > 3_000


def test_mask_masks_the_usual_addresses_and_leaves_what_it_cannot_prove():
    texts = ["550 5.1.1 <taro@docomo.ne.jp>: User unknown", "550 Unknown user k.yamada@au.com",
             "a@b c@d", "<\"john doe\"@example.jp>", "名前@example.jp", None, "",
             "<山田@例え.jp>", "a\u3000山田@x.jp", "x@y\u00a0z", "x@y\u2003", "é@\u0085"]
    assert mask_addresses(pa.array(texts, pa.string())).to_pylist() == [
        "550 5.1.1 <x@x>: User unknown", "550 Unknown user x@x",
        "x@x c@d",  # the second token's separator went to the first match: left as it is
        "<\"john doe\"@example.jp>", "x@x", None, "",
        "<x@x>",                       # SMTPUTF8 addresses too
        "a\u3000山田@x.jp", "x@y\u00a0z", "x@y\u2003", "é@\u0085"]  # a wide space (Python's \s) is no S: left


@pytest.mark.skipif(native.SCANNER is None, reason="no compiled scanner")
def test_compiled_mask_is_the_pattern():
    rng = random.Random(17)
    pieces = [chr(c) for c in range(128)] + ["@"] * 20 + [" "] * 10 + ["é", "名", "\u3000", "a.b", "x-y_z", "<", ">"]
    pieces += ["\u0085", "\u00a0", "\u1680", "\u2000", "\u200a", "\u200b", "\u2028", "\u2029", "\u202f", "\u205f",
               "\u3001", "\u0084", "\u00a1", "\U0001f600", "山田"] * 3
    texts = _real_texts() + _generated_texts(20_000, seed=11) + _jis_texts(5_000, seed=23) + _bracket_texts(50_000, seed=31)
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 24))) for _ in range(100_000)]
    texts += [None, "", "@", "a@b", " a@b ", "a@b@c d@e", "a@b c@d", "\"q\"@x.y z@w", None]
    column = pa.array(texts, pa.string())
    compiled = native.SCANNER.mask_addresses(column)
    assert compiled.to_pylist() == mask_addresses(column).to_pylist()
    assert sum(m != t for m, t in zip(compiled.to_pylist(), texts)) > 20_000
    for part in (column.slice(5_000, 3_000), column.slice(len(column) - 7), column.slice(0, 0)):
        assert native.SCANNER.mask_addresses(part).to_pylist() == mask_addresses(part).to_pylist()
    # of some rows (ingest's failed rows), in any order, a row twice, nulls among them
    rows = np.array([rng.randrange(len(column)) for _ in range(20_000)] + [len(column) - 8, 0, 0])
    assert native.SCANNER.mask_addresses(column, rows).to_pylist() == mask_addresses(column.take(rows)).to_pylist()
    part = column.slice(len(column) - 9)
    assert native.SCANNER.mask_addresses(part, np.array([8, 1, 8])).to_pylist() == mask_addresses(part.take([8, 1, 8])).to_pylist()
    with pytest.raises(ValueError):
        native.SCANNER.mask_addresses(part, np.array([9]))


def test_masked_texts_get_the_same_verdicts():
    rng = random.Random(5)
    texts = _generated_texts(3_000, seed=7)
    masked = mask_addresses(pa.array(texts)).to_pylist()
    for text, m in zip(texts, masked):
        domain = rng.choice(["docomo.ne.jp", "au.com", "yahoo.co.jp", "example.jp", None])
        day = date(2025, 3, 13) + timedelta(days=rng.randrange(-3, 3))
        for status in ("bounced", "deferred"):
            args = dict(dsn=rng.choice([None, "5.0.0", "5.1.1"]), reply_code=rng.choice([None, 550]),
                        smtp_phase=rng.choice([None, "rcpt", "end_of_data"]), mta=rng.choice(["postfix", "sendmail", "qmail"]),
                        recipient_domain=domain, day=day)
            assert classify(status, m, **args) == classify(status, text, **args), text


def _events(n: int, seed: int = 3) -> list[tuple]:
    """Events over every provider domain and relay, every carrier, each period boundary +-1 day."""
    t = tables()
    providers = t.providers
    carriers = default_table()
    domains = sorted(providers.domains)[:200] + sorted(carriers.domains)[:100] + ["example.jp", "gmail.com", "", None]
    relays = [f"{r}[192.0.2.1]:25" for r in sorted(providers.relays)[:50]] + ["mx.example.jp[192.0.2.9]:25", "", None]
    carrier_names = sorted(set(carriers.domains.values())) + ["other", "", None]
    days = {None, date(2026, 11, 3)}
    for periods in providers.periods.values():
        for p in periods:
            for edge in (p.since, p.until):
                if edge:
                    days.update(edge + timedelta(days=d) for d in (-1, 0, 1))
    days = sorted(days, key=lambda d: (d is None, d))
    texts = _generated_texts(300, seed=seed)[:300] + _real_texts()[:300] + [None, ""]
    rng = random.Random(seed)
    events = []
    for _ in range(n):
        events.append((rng.choice(["bounced", "deferred", "expired", "sent", "undeliverable"]), rng.choice(texts),
                       rng.choice([None, "", "5.0.0", "4.0.0", "5.1.1", "5.2.2", "4.7.0", "5.7.1", "5.1.3"]),
                       rng.choice([None, 0, 421, 450, 550, 552, 553, 554]),
                       rng.choice([None, "", "connect", "helo", "mail", "rcpt", "data", "end_of_data"]),
                       rng.choice(carrier_names), rng.choice(domains), rng.choice(relays), rng.choice(days)))
    return events


@pytest.mark.parametrize("mta", ["postfix", "sendmail", "qmail", None])
def test_classify_many_is_classify(mta):
    events = _events(6_000, seed=hash(mta) % 1000 if mta is None else len(mta))
    columns = [list(c) for c in zip(*events)]
    status, text, dsn, code, phase, carrier, domain, relay, day = columns
    fast = classify_many(status, text, dsn, code, phase, carrier, mta, domain, relay, day)
    plain = [classify(s, x, dsn=d, reply_code=c, smtp_phase=p, carrier=ca, mta=mta, recipient_domain=do,
                      relay=r, day=dy) for s, x, d, c, p, ca, do, r, dy in events]
    assert fast == plain
    assert classify_many(status, text, dsn, code, phase, carrier, [mta] * len(events), domain, relay, day) == plain
    by_key = [classify_by_key(s, x, d, c, p, mta, provider_key(do, r, ca, dy)) for s, x, d, c, p, ca, do, r, dy in events]
    assert by_key == plain
    assert len({v.reason for v in plain}) >= 8  # the events reach many reasons, not one
