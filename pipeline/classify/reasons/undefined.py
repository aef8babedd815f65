"""undefined: nothing in the reply says why (e.g. sendmail's bare `stat=Service unavailable`).
Never counted against an address.
"""

NAME = "undefined"
DESCRIPTION = "the reply does not say why"
SCOPE = "unknown"
PHRASES: list = []
DSN: tuple[str, ...] = ()

