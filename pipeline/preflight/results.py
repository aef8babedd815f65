"""The one result shape every doctor check returns, and how a list of them is shown.

Reads nothing, writes nothing. Used by dns_checks, message_checks, spamassassin and the CLI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Literal

Status = Literal["pass", "warn", "fail"]
STATUSES = ("pass", "warn", "fail")


@dataclass(frozen=True)
class CheckResult:
    """One check: `name` (e.g. "spf"), `status`, what was found (`detail`), what to do (`fix`).

    `fix` is empty for a pass. `data` carries machine-readable facts (records found, lookup
    counts, rules that fired) for --json and notebooks; the text never depends on it.
    """

    name: str
    status: Status
    detail: str
    fix: str = ""
    data: dict | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["data"] is None:
            d["data"] = {}
        return d


def failed(results: Iterable[CheckResult]) -> bool:
    """True when any check failed (the CLI then exits 1)."""
    return any(r.status == "fail" for r in results)


def summary(results: list[CheckResult]) -> str:
    counts = {s: sum(1 for r in results if r.status == s) for s in STATUSES}
    return f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed"


def render_table(results: list[CheckResult]) -> str:
    """`PASS  name  detail` aligned, with an indented `fix:` line under each warn/fail."""
    if not results:
        return "(no checks ran)\n"
    width = max(len(r.name) for r in results)
    lines = []
    for r in results:
        lines.append(f"{r.status.upper():<4}  {r.name:<{width}}  {r.detail}".rstrip())
        if r.status != "pass" and r.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {r.fix}")
    lines.append(summary(results))
    return "\n".join(lines) + "\n"
