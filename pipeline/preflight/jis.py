"""Re-exports for tests/test_doctor_message.py: the Japanese text rules live in pipeline.jptext."""

from __future__ import annotations

from ..jptext import decode_iso2022jp, suggestion

__all__ = ["decode_iso2022jp", "suggestion"]
