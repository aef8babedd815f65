"""too_many_recipients: more recipients in one message/session than the receiver allows
(docomo: `552 Too many recipients` at RCPT TO after 100; au/SoftBank: 100 per message). Our fault.
"""


NAME = "too_many_recipients"
DESCRIPTION = "too many recipients in one message or session"
SCOPE = "sender"
PHRASES = [
    "too many recipients",
    "too many rcpt",
    "recipient limit exceeded",
    "number of recipients exceeded",
    "exceeded the maximum number of recipients",
    "maximum number of recipients",
    "recipients per message",
]
DSN = ("5.5.3", "4.5.3")

