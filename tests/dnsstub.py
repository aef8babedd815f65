"""A programmable DNS server on 127.0.0.1 for the doctor tests (UDP, one thread).

BIND (tests/test_doctor_setup.py) serves real zones; this stub serves what BIND cannot be made to
do per name: stay silent (a lost answer), answer SERVFAIL or REFUSED for one name and type, count
the questions it was asked. Zone data are given as {(name, type): [rdata text]}; a name with no
entry at all is NXDOMAIN, a name with entries of other types answers NOERROR with no records.
`behaviour` maps (name, type) or (name, "*") to "DROP", "SERVFAIL", "REFUSED" or "NXDOMAIN"
(the root is ".").
"""

from __future__ import annotations

import socket
import threading
from collections import Counter

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

RCODES = {"SERVFAIL": dns.rcode.SERVFAIL, "REFUSED": dns.rcode.REFUSED, "NXDOMAIN": dns.rcode.NXDOMAIN}


class StubDNS:
    def __init__(self, records: dict | None = None, behaviour: dict | None = None):
        self.records = {(n.lower().rstrip("."), t.upper()): list(v) for (n, t), v in (records or {}).items()}
        self.behaviour = {(n.lower().rstrip(".") or ".", t.upper()): v for (n, t), v in (behaviour or {}).items()}
        self.asked: Counter = Counter()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=5)

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            try:
                reply = self._answer(dns.message.from_wire(wire))
            except Exception:  # noqa: BLE001 (a malformed question is dropped, as by a real server)
                continue
            if reply is not None:
                try:
                    self.sock.sendto(reply.to_wire(), peer)
                except OSError:
                    pass

    def _answer(self, query):
        q = query.question[0]
        name = q.name.to_text(omit_final_dot=True).lower() or "."
        rdtype = dns.rdatatype.to_text(q.rdtype)
        self.asked[(name, rdtype)] += 1
        how = self.behaviour.get((name, rdtype), self.behaviour.get((name, "*")))
        if how == "DROP":
            return None
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA | dns.flags.RA
        if how in RCODES:
            reply.set_rcode(RCODES[how])
            return reply
        # follow CNAMEs the way a recursive resolver does
        current, seen = name, set()
        while (current, "CNAME") in self.records and rdtype != "CNAME" and current not in seen:
            seen.add(current)
            target = self.records[(current, "CNAME")][0]
            reply.answer.append(dns.rrset.from_text(current + ".", 60, "IN", "CNAME", target))
            current = target.lower().rstrip(".")
        if (current, rdtype) in self.records:
            reply.answer.append(dns.rrset.from_text_list(current + ".", 60, "IN", rdtype,
                                                         self.records[(current, rdtype)]))
        elif not any(n == current for n, _t in self.records) and current != ".":
            reply.set_rcode(dns.rcode.NXDOMAIN)
        return reply
