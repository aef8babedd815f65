"""network: we could not talk to the receiver: timeouts, refused connections, no route,
temporary DNS failures, TLS handshakes, mail loops. Temporary; neither ours nor the address's.

Phrases: own list plus Sisimai's NetworkError wording (BSD-2, sisimai/p5-sisimai).
"""

from ._phrases import R

NAME = "network"
DESCRIPTION = "the receiving server could not be reached (timeout, refused, DNS, TLS)"
SCOPE = "network"
PHRASES = [
    "connection timed out",
    "timed out",
    "timeout",
    "connection refused",
    "no route to host",
    "network is unreachable",
    "host is unreachable",
    "host unreachable",
    "connection reset",
    "lost connection",
    "connection closed",
    "connection dropped",
    "connection was dropped",
    "broken pipe",
    "unexpected eof",
    "premature eof",
    "conversation with",
    "unable to connect",
    "could not connect",
    "couldn't connect",
    "cannot connect",
    "can't connect",
    "failed to connect",
    "wasn't able to establish an smtp connection",
    "unable to establish",
    "no mx host",
    "host not found, try again",
    "unable to look up host",               # Postfix native lookup of a next hop (host_unknown.py)
    "name service error",
    "temporary failure in name resolution",
    "name server timeout",
    "host name lookup failure",
    "dns lookup failure",
    "dns error",
    "servfail",
    "malformed name server reply",
    "malformed or unexpected name server reply",
    "dns records for the destination computer could not be found",
    "tls handshake",
    "handshake failure",
    "cannot start tls",
    "ssl error",
    "ssl handshake",
    "mail forwarding loop",
    "routing loop",
    "message looping",
    "hop count exceeded",
    "too many hops",
    "unable to resolve route",
    "unrouteable mail domain",
    "network error",
    "server did not respond",
    "no response from",
    "read error",
    "write error",
    R(r"\bconnect to \S+: "),
]
# 4.1.2: a transient "bad destination system": the DNS lookup failed for now (host_unknown.py)
DSN = ("4.1.2", "4.4.0", "4.4.1", "4.4.2", "4.4.3", "4.4.4", "4.4.5", "4.4.6", "5.4.0", "5.4.1", "5.4.2",
       "5.4.3", "5.4.5", "5.4.6")

