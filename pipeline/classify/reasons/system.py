"""system: an error inside the receiving (or our own) mail system: configuration errors, disk
full, local delivery agents failing, loops back to itself, Postfix "delivery temporarily
suspended" with nothing more specific. Temporary; nobody's list problem. Its specific wording
(disk space, mailer errors) is tried before the address reasons: "procmail: ... No such user" is
a broken delivery agent, never an unknown user.

Phrases: own list plus Sisimai's SystemError/SystemFull/MailerError wording
(BSD-2, sisimai/p5-sisimai).
"""


NAME = "system"
DESCRIPTION = "an error inside a mail system, not about the address"
SCOPE = "unknown"
PHRASES = [
    'local configuration error',
    'mail system configuration error',
    'system config error',
    'server configuration error',
    'remote server is misconfigured',
    'temporary local problem',
    'local error in processing',
    'queue file write error',
    'insufficient system storage',
    'insufficient disk space',
    'mail system full',
    'system is full',
    'disk full',
    'out of memory',
    'loops back to myself',
    'aliasing/forwarding loop broken',
    'would create a mail loop',
    'loop was found in the mail exchanger',
    'mailer error',
    'command died with status',
    'command failed:',
    'command output:',
    'procmail',
    'maildrop',
    'x-unix;',
    'pipe to |',
    "can't create user output file",
    'could not load drd',
    'interrupted system call',
    'recipient deferred because there is no mdb',
    'address verification in progress',      # Postfix reject_unverified_recipient: no answer yet
    'temporary system problem',              # Gmail 421 4.3.0 "Temporary System Problem. Try again later"
]
# Generic: a code that says more wins over these ("delivery temporarily suspended: ... 550 5.1.1").
WEAK = [
    'delivery temporarily suspended',
    'internal error',
    'internal server error',
    'local problem',
    'resources temporarily unavailable',
    'resource temporarily unavailable',
    'service currently unavailable',
    'transaction failed',
    'ldap',
    'while being processed',
    'system error',
    'server error',
]
DSN = ("4.3.0", "5.3.0", "4.3.1", "5.3.1", "4.3.5", "5.3.5", "4.2.4", "5.2.4")

