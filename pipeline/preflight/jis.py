"""Re-exports for tests/test_doctor_message.py: the Japanese text rules live in pipeline.core.jptext."""

from __future__ import annotations

from ..core.jptext import decode_iso2022jp, suggestion

__all__ = ["decode_iso2022jp", "suggestion"]
