"""The Japanese template notice for customers whose handset settings refuse our mail.

Reads docs/handset-filters.md (shipped in the wheel as pipeline/docs/handset-filters.md); writes
nothing. `template(domain)` returns the notice's plain text (the ```text block of that file) with
the sending domain filled in when known. Called by pipeline.report.reports for report.html.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from ..core.errors import MailHygieneError

FILE_NAME = "handset-filters.md"
DOMAIN_PLACEHOLDER = "＜送信ドメイン＞"
_BLOCK = re.compile(r"^```text\n(.*?)^```", re.S | re.M)


def notice_path() -> Path:
    """docs/handset-filters.md inside the installed package (wheel), else the repository's."""
    packaged = Path(str(resources.files("pipeline"))) / "docs" / FILE_NAME
    if packaged.is_file():
        return packaged
    repo = Path(__file__).resolve().parents[2] / "docs" / FILE_NAME
    if repo.is_file():
        return repo
    raise MailHygieneError(f"{FILE_NAME} is missing from this installation: reinstall mailhygiene")


def template(domain: str | None = None) -> str:
    """The notice's text; `domain` replaces the sending-domain placeholder when given."""
    text = notice_path().read_text(encoding="utf-8")
    match = _BLOCK.search(text)
    if not match:
        raise MailHygieneError(f"{notice_path()} has no ```text block with the notice")
    body = match.group(1).rstrip("\n") + "\n"
    return body.replace(DOMAIN_PLACEHOLDER, domain) if domain else body
