"""Classify: why a delivery failed, whose fault it is, hard or soft, and which carrier.

  classifier  classify(status, diagnostic, dsn, reply_code, smtp_phase, carrier, mta,
              recipient_domain, relay, day) -> Classification; explain() -> the rule that decided;
              configure(cfg.classify, cfg.carriers) installs the config's phrases and providers;
              provider_key(domain, relay, carrier, day) for callers that de-duplicate first,
              classify_by_key(status, text, dsn, reply_code, phase, mta, provider key) for them;
              classify_many(columns...) the same verdicts for many events at once;
              mask_addresses(arrow texts) masks the addresses no verdict depends on (a key for
              de-duplicating a column before classifying it)
  reasons/    one module per bounce reason: phrases and codes as data, ORDER of trial in one place
  carriers    recipient domain / MX host -> carrier (data/carriers.toml + config [carriers])
  providers   recipient domain / relay / carrier + day -> provider behaviour period
              (data/providers.toml + config [classify.providers])
  data/       carrier and provider tables, Japanese phrases (phrases_ja.toml)
"""

from .classifier import (
    DELIVERED,
    Classification,
    Decision,
    classify,
    classify_by_key,
    classify_many,
    configure,
    describe,
    explain,
    is_hard,
    mask_addresses,
    normalise,
    parse_reply,
    provider_key,
)

__all__ = ["DELIVERED", "Classification", "Decision", "classify", "classify_by_key", "classify_many", "configure", "describe", "explain",
           "is_hard", "mask_addresses", "normalise", "parse_reply", "provider_key"]
