"""sender_domain: our envelope sender (MAIL FROM) or its domain was refused, e.g. SoftBank's
`553 <our domain> does not exist` at MAIL FROM when our domain has no DNS. Every recipient fails
the same way: it is never the addresses' fault.

qmail's own framing "Connected to X but sender was rejected" is not a phrase here: it only says
the phase (MAIL FROM); the remote's words after it decide, else the phase fallback does.

Phrases: own list plus Sisimai's Rejected wording (BSD-2, sisimai/p5-sisimai).
"""

from . import host_unknown
from ._phrases import R

NAME = "sender_domain"
DESCRIPTION = "our envelope sender or its domain was refused"
SCOPE = "sender"
PHRASES = [
    "sender address rejected",
    "sender rejected",
    "sender domain",
    "your envelope sender",
    R(r"\bsender(?:'s)? (?:mailbox|account|quota)\b"),   # "Sender mailbox quota exceeded": ours
    "domain of sender address",
    "sender verify failed",
    "sender verification failed",
    "invalid sender",
    R(r"\bsender(?:'s)? (?:e-?mail )?address (?:is )?(?:invalid|not valid|unknown|does not exist)\b"),
    "unroutable sender address",
    "unknown sender",
    "sender unknown",
    "sender not allowed",
    "sender not pre-approved",
    "sender is spammer",
    "null sender is not allowed",
    "empty envelope senders not allowed",
    "empty email address",
    "returned mail not accepted here",
    "mail from not owned by user",
    "not a registered gateway user",
    "by non-member to a members-only list",
    "not allowed to post to this",
    "not member article from",
    "sending this from a different address or alias",
    "has an outgoing mail suspension",
    "your email address has been blacklisted",
    "too many spam complaints",
    "spam reporting address",
    "can't determine purported responsible address",
    "can't determine purported responsible address",
    "fully qualified email address required",
    "emetteur invalide",
    "permission to post",
    "not a member of this",
    "from: domain is invalid",
    R(r"\bheader from:? domain\b|\bfrom: domain\b"),  # "550 Header From domain does not exist": our From
    "verification failed for <",            # Exim's sender verify: "550-Verification failed for <our sender>"
    "badsendermx",
    "sendernoa",
    "valid sender domain",
    "senderfilterconfig",
    "backscatter protection",
    "email address is not verified",        # Amazon SES: our sending identity is not verified
    "access denied (in reply to mail from command)",
    R(r"\bdomain\b.{0,60}\bis a dead domain\b"),
    R(r"\bafter mail from:.{0,200}\bdoes not exist\b"),
    R(r"\breject mail from\b.{0,60}@"),
    # Japanese: our sender address or domain (送信者 / 送信元 / 差出人 / エンベロープFrom) refused or
    # unknown: 「送信者のアドレスが存在しません」 is about us, never the recipient
    R(r"(?:送信者|送信元|差出人|エンベロープfrom|mail from)の?(?:メール)?(?:アドレス|ドメイン)"
      r"[^。、,.]{0,12}?(?:存在しません|存在しない|見つかりません|不正|無効|拒否|解決できません)"),
]
DSN = ("5.1.7", "5.1.8", "4.1.7", "4.1.8", "5.7.27")

def also(ctx) -> str | None:
    t = ctx.text
    if ctx.phase == "mail" and ("not exist" in t or host_unknown.phrase_match(t)):
        return "does not exist at MAIL FROM"  # our domain "does not exist" (SoftBank 553)
    return None
