"""mailbox_full: the recipient's mailbox is over quota (docomo: `552 Too much mail data`).
Temporary by nature: counted by the suppression rule only when it persists.

Phrases: own list plus Sisimai's MailboxFull wording (BSD-2, sisimai/p5-sisimai).
"""

import re

from ._phrases import R

NAME = "mailbox_full"
DESCRIPTION = "the recipient's mailbox is full"
SCOPE = "recipient"
PHRASES = [
    "too much mail data",                     # docomo
    "mailbox full",
    "mailbox is full",
    "mailbox is over",
    "mailbox over quota",
    "mailbox has exceeded",
    "mailbox exceeded",
    "mailbox exceeds",
    "mailbox quota",
    "mailbox size limit exceeded",
    "full mailbox",
    "mailfolder is full",
    "mail quota exceeded",
    "quota exceeded",
    "over quota",
    "overquota",
    "over the quota",
    "over the allowed quota",
    "exceeded quota",
    "exceeding its mailbox quota",
    "exceeding their quota",
    "quota violation",
    "disk quota",
    "disc quota exceeded",
    "exceeded storage allocation",
    "not enough storage space in",
    "does not have enough space",
    "insufficient space",
    "not enough disk space",                  # a recipient's DSN: its storage (Sisimai: mailboxfull)
    "not sufficient disk space",
    "no space left on device",
    "user has too many messages on the server",
    "user's space has been used up",
    "mail file size exceeds the maximum size allowed for mail delivery",
    "exceeding receiving limits",
    "inbox is full",
    "diskspace quota",
    "would exceed maximum allowed storage",
    R(r"\bmailbox would exceed\b"),
    "out of storage space",                 # Gmail 4.2.2/5.2.2 "The recipient's inbox is out of storage space"
    "recipient's mailbox is full",
    "boite du destinataire pleine",
    "boîte aux lettres pleine",
    "boite aux lettres pleine",
    "postfach voll",
    "postfach ist voll",
    "buzón lleno",
    "buzon lleno",
    "casella piena",
    "邮箱已满",
    "邮箱空间不足",
    "사서함이 가득",
    R(r"\bquota\b.{0,30}\b(?:exceed|full|reached)"),
    # Japanese: the mailbox / inbox / its storage is full or over its limit, in any wording
    # 「メールボックスの容量を超えています」「受信箱がいっぱいです」「保存容量が不足しています」
    R(r"(?:メールボックス|受信箱|受信ボックス|メールbox|保存容量|ディスク容量|ボックス容量)[^。、,.]{0,12}?"
      r"(?:いっぱい|一杯|満杯|超え|超過|オーバー|不足|上限に達)"),
]
DSN = ("5.2.2", "4.2.2")

# A quota of connections, of our IP or of our sending ("Connection quota exceeded", "Quota exceeded
# for this IP"): the receiver limits us, the mailbox is not full (rate_limited decides).
_NOT_THE_MAILBOX = re.compile(
    r"\b(?:connection|connections|session|ip|sending|send|outbound|relay|rate|hourly|daily|message rate|domain|submission)"
    r"\s+quota\b|\bquota (?:exceeded |reached )?for (?:this|your|the sending) (?:ip|host|network|server|sender|domain)\b")


# Exchange Online's "550 5.2.2 Submission quota exceeded" / "554 5.2.2 mailbox full;
# STOREDRV.Submission.Exception:SubmissionQuotaExceededException": the *sending* account (ours, when
# we relay through it) exceeded its quota; a recipient's full mailbox is STOREDRV.Deliver.
_SUBMISSION = "submissionquotaexceeded"


def veto(ctx) -> bool:
    return bool(_NOT_THE_MAILBOX.search(ctx.text)) or _SUBMISSION in ctx.text

