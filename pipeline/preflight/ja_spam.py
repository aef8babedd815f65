"""A Japanese spam-phrase score for `doctor message`, beside SpamAssassin's (whose stock rules
barely read Japanese: docs/doctor.md explains why).

Reads the phrase file (pipeline/preflight/data/ja_spam_phrases.toml, or doctor.ja_spam_phrases)
and MessageText (body.py); writes nothing. Called by message_checks.check_message.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from ..core.errors import ConfigError
from .body import MessageText
from .results import CheckResult

PACKAGED = "ja_spam_phrases.toml"
_SPACE = re.compile(r"\s+")
_LINK = re.compile(r"(?:https?://|www\.)[^\s<>\"'()\[\]{}「」『』【】、。]+", re.IGNORECASE)
_EXCLAIM = re.compile(r"[!！]{3,}")


@dataclass(frozen=True)
class Phrase:
    text: str
    key: str  # normalised form the text is searched for
    weight: float
    why: str


@dataclass(frozen=True)
class PhraseList:
    source: str
    phrases: tuple[Phrase, ...]
    warn: float
    fail: float
    bare_ip_link: float
    url_shortener: float
    link_text_mismatch: float
    exclamation_run: float
    shorteners: frozenset[str]


def normalise(text: str) -> str:
    """NFKC (full-width ASCII and half-width kana folded), lower case, white space removed."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text)).lower()


def load_phrases(path: str | None = None) -> PhraseList:
    """The phrase list: `path` (a TOML file of the packaged file's shape) or the packaged one."""
    return _load(str(path) if path else "")


@lru_cache(maxsize=8)
def _load(path: str) -> PhraseList:
    if path:
        source = path
        try:
            data = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise ConfigError(f"doctor.ja_spam_phrases: cannot read {path}: {exc.strerror or exc}") from None
    else:
        source = f"pipeline/preflight/data/{PACKAGED}"
        data = resources.files("pipeline.preflight").joinpath("data", PACKAGED).read_bytes()
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"phrase file {source} is not valid UTF-8 TOML: {exc}") from None
    return _build(raw, source)


def _number(table: dict, key: str, where: str, default: float | None = None) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where}: {key} must be a number >= 0, got {value!r}")
    return float(value)


def _build(raw: dict, source: str) -> PhraseList:
    thresholds = raw.get("thresholds", {})
    structure = raw.get("structure", {})
    items = raw.get("phrases", [])
    if not isinstance(thresholds, dict) or not isinstance(structure, dict) or not isinstance(items, list):
        raise ConfigError(f"phrase file {source}: [thresholds], [structure] are tables and [[phrases]] an array")
    warn = _number(thresholds, "warn", f"{source} [thresholds]")
    fail = _number(thresholds, "fail", f"{source} [thresholds]")
    if not 0 < warn <= fail:
        raise ConfigError(f"phrase file {source}: thresholds need 0 < warn <= fail (got {warn}, {fail})")
    phrases = []
    for n, item in enumerate(items, start=1):
        where = f"phrase file {source}, phrase {n}"
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
            raise ConfigError(f"{where}: needs text = \"...\" (a non-empty string)")
        unknown = set(item) - {"text", "weight", "why"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} (text, weight, why)")
        phrases.append(Phrase(item["text"], normalise(item["text"]), _number(item, "weight", where),
                              str(item.get("why", ""))))
    shorteners = structure.get("shorteners", [])
    if not isinstance(shorteners, list) or not all(isinstance(s, str) for s in shorteners):
        raise ConfigError(f"phrase file {source} [structure]: shorteners must be a list of domains")
    where = f"{source} [structure]"
    return PhraseList(
        source, tuple(phrases), warn, fail,
        _number(structure, "bare_ip_link", where, 0.0), _number(structure, "url_shortener", where, 0.0),
        _number(structure, "link_text_mismatch", where, 0.0), _number(structure, "exclamation_run", where, 0.0),
        frozenset(s.lower().strip(".") for s in shorteners),
    )


def _host(url: str) -> str:
    if url.lower().startswith("www."):
        url = "http://" + url
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _registered(host: str) -> str:
    """Last two labels (three under a two-letter second level such as co.jp): enough to tell
    whether a link's text and its target belong to one site."""
    labels = host.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in {"co", "ne", "or", "ac", "go", "ad", "ed", "gr", "lg"}:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def score_japanese(text: MessageText, phrases: PhraseList, spamassassin_score: float | None = None) -> CheckResult:
    """`ja-spam`: the sum of the weights of the phrases and structural signals found."""
    shown = [text.subject] + [p.visible for p in text.parts]
    haystack = normalise("\n".join(shown))
    hits: list[dict] = []
    for phrase in phrases.phrases:
        if phrase.key and phrase.key in haystack:
            hits.append({"signal": phrase.text, "points": phrase.weight, "why": phrase.why})

    links = [u for block in shown for u in _LINK.findall(unicodedata.normalize("NFKC", block))]
    links += [href for p in text.parts for href, _label in p.links if href.lower().startswith(("http", "www."))]
    hosts = {h for h in (_host(u) for u in links) if h}
    ip_hosts = sorted(h for h in hosts if _is_ip(h))
    if ip_hosts and phrases.bare_ip_link:
        hits.append({"signal": f"link to a bare IP address ({', '.join(ip_hosts[:3])})",
                     "points": phrases.bare_ip_link, "why": "phishing and throw-away servers link by IP"})
    short = sorted(h for h in hosts if h in phrases.shorteners)
    if short and phrases.url_shortener:
        hits.append({"signal": f"link through a URL shortener ({', '.join(short[:3])})",
                     "points": phrases.url_shortener, "why": "hides where the link goes"})
    mismatched = []
    for p in text.parts:
        for href, label in p.links:
            shown_urls = _LINK.findall(unicodedata.normalize("NFKC", label))
            target = _host(href)
            if shown_urls and target and _host(shown_urls[0]) and \
                    _registered(_host(shown_urls[0])) != _registered(target):
                mismatched.append(f"{_host(shown_urls[0])} -> {target}")
    if mismatched and phrases.link_text_mismatch:
        hits.append({"signal": f"link text shows another site than it opens ({mismatched[0]})",
                     "points": phrases.link_text_mismatch, "why": "phishing pattern"})
    if any(_EXCLAIM.search(block) for block in shown) and phrases.exclamation_run:
        hits.append({"signal": "！！！ (three or more exclamation marks)", "points": phrases.exclamation_run,
                     "why": "shouting"})

    score = round(sum(h["points"] for h in hits), 2)
    hits.sort(key=lambda h: -h["points"])
    listing = ", ".join(f"{h['signal']} {h['points']:+g}" for h in hits[:8]) or "no phrase or signal found"
    beside = f"; SpamAssassin: {spamassassin_score:.1f}" if spamassassin_score is not None else ""
    detail = f"score {score:g} (warn at {phrases.warn:g}, fail at {phrases.fail:g}): {listing}{beside}"
    data = {"score": score, "warn": phrases.warn, "fail": phrases.fail, "hits": hits, "source": phrases.source,
            "spamassassin_score": spamassassin_score}
    fix = ("rewrite or drop what is listed: Japanese carriers' and mailbox providers' filters read these "
           "phrases even where SpamAssassin's stock rules do not / 列挙された表現やリンクを見直してください")
    if score >= phrases.fail:
        return CheckResult("ja-spam", "fail", detail, fix, data)
    if score >= phrases.warn:
        return CheckResult("ja-spam", "warn", detail, fix, data)
    return CheckResult("ja-spam", "pass", detail, data=data)
