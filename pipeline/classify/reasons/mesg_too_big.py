"""mesg_too_big: our message is larger than the receiver accepts (au: 3 MB; SoftBank: 1 MB).

Phrases: own list plus Sisimai's MesgTooBig/ExceedLimit wording (BSD-2, sisimai/p5-sisimai).
"""

from ._phrases import R

NAME = "mesg_too_big"
DESCRIPTION = "our message is larger than the receiver accepts"
SCOPE = "sender"
PHRASES = [
    "message size exceeds",
    "message too big",
    "message is too big",
    "message too large",
    "message is too large",
    "message file too big",
    "message length exceeds",
    "max message size exceeded",
    "maximum message size",
    "exceeded maximum inbound message size",
    "exceeded the maximum incoming message size",
    "exceeds the size limit",
    "size limit exceeded",
    "message size limit",
    "size exceeds fixed limit",
    "exceeds fixed maximum message size",
    "taille limite du message atteinte",
    R(r"\bsize\b.{0,30}\bexceeds?\b.{0,30}\blimit"),
    # Japanese: the message's size over the limit 「メールサイズが上限を超えています」
    R(r"(?:メールサイズ|メッセージサイズ|メールのサイズ|メッセージのサイズ|添付ファイル)[^。、,.]{0,12}?"
      r"(?:大きすぎ|超え|超過|上限|制限)"),
]
DSN = ("5.2.3", "5.3.4", "4.3.4")


def veto(ctx) -> bool:
    # "Mailbox size limit exceeded": the mailbox's size, not the message's (mailbox_full)
    return "mailbox size" in ctx.text

