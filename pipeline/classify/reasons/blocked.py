"""blocked: our IP, network or domain is refused: DNS blocklists, reputation, "too many unknown
recipients from your network" (docomo blocks such networks for a while). Never the address's fault.

Phrases: own list plus Sisimai's Blocked/BadReputation wording (BSD-2, sisimai/p5-sisimai).
"""

from ._phrases import R

NAME = "blocked"
DESCRIPTION = "our IP, network or domain is blocked (blocklist or reputation)"
SCOPE = "sender"
PHRASES = [
    "blocked using",
    R(r"(?<!not )\blisted (?:in|at|on|by)\b.{0,60}(?:\bip\b|bl\b|rbl|dnsbl|spam|block|black|abuse|zen\.)"),
    "blacklist",
    "blocklist",
    "block list",
    "black list",
    "denylist",
    "dnsbl",
    "rbl",
    "spamhaus",
    "spamcop",
    "barracuda",
    "sorbs",
    "abuseat",
    "reputation",
    "user complaints",
    "unexpected volume",
    "client host rejected",
    "sender ip address rejected",
    "bad sender ip address",
    "access from ip address",
    "not currently accepting mail from your ip",
    "not accepting mail from your ip",
    R(r"\bnot accepted from (?:your|this|the sending) (?:ip|host|server|network)\b"),  # Microsoft 5.7.708
    R(r"\bnot accept(?:ing)? (?:any )?(?:mail|e-?mails?|messages|connections) from (?:your|this|the sending) (?:ip|host|server|network)\b"),
    "permanently deferred",                 # Yahoo [TS03]/[TSS09]: "All messages from <ip> will be permanently deferred"
    "not allowed to connect",
    "dynamic ip",
    "dynamic/zombied",
    "hosts with dynamic",
    "residential",
    "dialup",
    "dial-up",
    "go away",
    "too many spams from your ip",
    "too many invalid recipients",
    # our network sends too many dead addresses (Yahoo "451 VS1-MF Excessive unknown recipients -
    # possible Open Relay"): the unknown-user words are about our list, not this recipient
    R(r"\b(?:too many|excessive|excessive number of|high (?:number|rate) of)\s+(?:unknown|invalid|bad|failed|non-?existent)"
      r"\s+(?:recipients|users|addresses|rcpts?)\b"),
    "possible open relay",
    "invalid ip for sending",
    "no access from mail server",
    "unwanted messages",
    "not accepting connections",
    "too many unknown",
    "currently sending spam",
    "you are sending spam",
    "remotehost looks suspiciously like spammer",
    "part of their network is on our block list",
    "listed as abusive",
    "use the smtp server of your isp",
    "rejecting open proxy",
    "confirm this mail server",
    "server requires confirmation",
    "may not be mail exchanger",
    "was not authenticated",
    R(r"\bmail server at\b.{0,60}\bis blocked\b"),
    R(r"\b(?:client host|sending ip|source ip|your ip|ip address|sender ip|your host|your network)\b[^.;]{0,20}\b(?:blocked|banned|blacklisted|refused|rejected|bloquee)\b"),
    R(r"\b(?:ip|your host|your network|your server)\b[^.;]{0,30}\b(?:blocked|blacklisted|banned)\b"),
    R(r"\bblocked\b[^.;]{0,20}\b(?:ip|network|host)\b"),
    R(r"(?:blocked|refused) - see https?://"),
    R(r"\bmail from ip\b.{0,20}\brefused\b"),
]
DSN = ("5.7.606", "4.7.606", "5.7.650", "4.7.650")

_URL_LISTS = ("blacklisted url", "uribl", "surbl")  # a URL in our content is listed: spam.py


def veto(ctx) -> bool:
    return any(u in ctx.text for u in _URL_LISTS)
