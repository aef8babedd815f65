"""Classify: why a delivery failed, whose fault it is, hard or soft, and which carrier.

  classifier  classify(status, diagnostic, dsn, reply_code, smtp_phase, ...) -> Classification
  reasons/    one module per bounce reason: phrases and codes as data, ORDER of trial in one place
  carriers    recipient domain / MX host -> carrier (data/carriers.toml + config [carriers])
  data/       carrier tables as data
"""

from .classifier import DELIVERED, Classification, classify, describe, is_hard, normalise, parse_reply

__all__ = ["DELIVERED", "Classification", "classify", "describe", "is_hard", "normalise", "parse_reply"]
