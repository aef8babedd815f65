"""user_unknown: the address's mailbox does not exist (docomo `550 Unknown user x@docomo.ne.jp`,
au `550 <x@au.com>: User unknown`, SoftBank `550 Invalid recipient: <x>` at RCPT TO).

PHRASES are explicit unknown-user words; WEAK are generic prefixes of policy refusals too
("Recipient address rejected:", "mailbox unavailable"): they decide only when no code contradicts.
What the words mean depends on the SMTP phase and on who answered (docomo/au after DATA: a filter;
Yahoo after DATA: a dead address): classifier._phase_rule and data/providers.toml.

Phrases: own list plus Sisimai's UserUnknown wording (BSD-2, sisimai/p5-sisimai).
"""

from ._phrases import Phrases, R

NAME = "user_unknown"
DESCRIPTION = "the mailbox does not exist"
SCOPE = "recipient"
PHRASES = [
    "user unknown",
    "unknown user",
    "unknown recipient",
    "unknown mailbox",
    "unknown address",
    "unknown e-mail address",
    "unknown email address",
    "unknown local part",
    "unknown local-part",
    "invalid recipient",
    "invalid mailbox",
    "invalid user",
    "invalid address",
    "invalid e-mail address",
    "invalid email address",
    "no such user",
    "no such mailbox",
    "no such recipient",
    "no such address",
    "no such person",
    "no such account",
    "no mailbox here",
    "no mailbox found",
    "no mailbox by that name",
    "no mail box available",
    "no account by that name",
    "not a valid mailbox",
    "not a valid user",
    "not a known user",
    "not a local address",
    "not an active address",
    "not our customer",
    "user not found",
    "user not known",
    "user not active",
    "user not exist",
    "user doesn't exist",
    "user does not exist",
    "user doesn't have a",
    "user missing home directory",
    "recipient not found",
    "recipient unknown",
    "recipient does not exist",
    "recipient not exist",
    "recipient is not local",
    "recipientnotfound",
    "recipnotfound",
    "mailbox not found",
    "mailbox not present",
    "mailbox does not exist",
    "mailbox invalid",
    "address does not exist",
    "address unknown",
    "address not found",
    "address couldn't be found",
    "address could not be found",
    "account does not exist",
    "account that you tried to reach does not exist",
    "email account does not exist",
    "bad destination mailbox",
    "bad recipient",
    "bad-recipient",
    "badrcptto",
    "non-existent user",
    "nonexistent user",
    "non existent user",
    "there is no one at this address",
    "this address no longer accepts mail",
    "no longer valid",
    "destination addresses were unknown",
    "destination server rejected recipients",
    "can't accept user",
    "cannot accept user",
    "no existe",
    "was not found in",
    "not our user",
    "invalid final delivery userid",           # IMail
    "no valid recipients for this mm",         # Verizon's MMS gateway: no such number
    # more of Sisimai's UserUnknown wordings (they name the missing recipient themselves)
    "not a valid recipient",
    "recipient not ok",
    "invalid-recipient",
    "userunknown",
    "recipient notfound",                      # Exchange "RESOLVER.ADR.Recipient NotFound"
    "address not present in directory",
    "badrecipientto list",
    "validrcptto list",
    "envelope recipient has been denied",      # qmail badrcptto: "sorry, your envelope recipient has been denied"
    "unknown virtual user",
    "utilisateur inconnu",
    "nessun utente simile",
    # other languages, without a code to fall back on (the recipient named, never the sender)
    "destinataire inconnu",
    "utente sconosciuto",
    "destinatario sconosciuto",
    "usuario desconocido",
    "destinatario desconocido",
    "benutzer unbekannt",
    "empfänger unbekannt",
    "empfaenger unbekannt",
    "收件人不存在",
    "收件人地址不存在",
    "邮箱不存在",
    "用户不存在",
    "수신자가 존재하지 않",
    "존재하지 않는 사용자",
    R(r"\brecipient (?:is |was )?not found\b"),
    "this user doesn't have a",                # qmail-ldap / Yahoo "dd This user doesn't have a yahoo.com account"
    # Microsoft's directory-based edge blocking: "550 5.4.1 Recipient address rejected: Access denied"
    # (with or without "AS(201806281)"): the address is not in the tenant's directory
    R(r"recipient address rejected: access denied\. as\(#\)"),
    R(r"\b5\.4\.1 .{0,20}recipient address rejected: access denied"),
    R(r"\brcpt <[^>]*> does not exist"),
    R(r"<[^<>]*> not found"),  # (not [^>]*: tried from every "<" of a long run, quadratic)
    R(r"\bnot listed in\b.{0,40}\b(?:directory|address book)"),
    R(r"\buser\b[^.;]{0,60}\b(?:does not exist|was not found|not found)\b"),
    R(r"\bmailbox\b[^.;]{0,60}\bdoes not exist\b"),
    # Japanese: the recipient (user, account, address, mailbox) "does not exist / is not found /
    # is not registered", in any of the servers' wordings (data/phrases_ja.toml lists fixed ones):
    # 「ユーザーが見つかりません」「宛先アドレスが存在しません」「存在しないユーザです」
    # 「登録されていないアドレスです」「そのようなユーザーはいません」. Our own address (送信者,
    # 差出人 ...) is sender_domain's, tried first.
    R(r"(?:ユーザー?|アカウント|(?<!ip)アドレス|宛先|受信者|メールボックス)[^。、,.]{0,12}?"
      r"(?:存在しません|存在しない|存在せず|見つかりません|見つからない|登録されていません|登録がありません)"),
    R(r"(?:存在しない|登録されていない|見つからない|無効な)(?:ユーザ|アカウント|アドレス|メールアドレス|宛先|受信者|メールボックス)"),
    R(r"そのような(?:ユーザ|アカウント|アドレス|メールボックス|宛先)"),
]
# Generic wording: also the prefix of policy refusals ("554 5.7.1 <a@b>: Recipient address rejected:
# Access denied", "Mail from your region is not accepted"); a contradicting code wins over it.
WEAK = [
    "recipient address rejected",
    "recipient rejected",
    "mailbox unavailable",
    "mailbox is unavailable",
    "requested action not taken: mailbox unavailable",
]
# "no valid recipients" (a DATA reply after every RCPT TO was refused) says that the recipient
# was refused, not why: it is evidence of the phase (classifier._REFUSED_AT_RCPT), not of a reason.
DSN = ("5.1.1", "4.1.1", "5.1.10")  # 5.1.10: Microsoft "RecipientNotFound"; null MX says so in words

_m = Phrases(PHRASES)


def phrase_match(text: str) -> bool:
    return _m(text)
