"""delivered: the recipient's server accepted the message (status=sent). Not an error.

Carriers accept some mail and drop it silently (carriers.md): "delivered" means accepted.
"""

NAME = "delivered"
DESCRIPTION = "accepted by the receiving server"
SCOPE = "none"
PHRASES: list = []
DSN: tuple[str, ...] = ()

