"""A tiny DNS server on 127.0.0.1 that answers every A query with one fixed address."""

from __future__ import annotations

import socket
import struct
import threading


class FakeDns:
    def __init__(self, address: str = "192.0.2.10"):
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            self.sock.sendto(self._answer(data), peer)

    def _answer(self, query: bytes) -> bytes:
        ident, _flags, qdcount = struct.unpack(">HHH", query[:6])
        end, labels = 12, []
        while query[end]:
            labels.append(query[end + 1 : end + 1 + query[end]].decode())
            end += query[end] + 1
        qtype = struct.unpack(">H", query[end + 1 : end + 3])[0]
        question = query[12 : end + 5]
        self.queries.append(".".join(labels))
        if qtype != 1:
            return struct.pack(">HHHHHH", ident, 0x8180, 1, 0, 0, 0) + question
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(self.address)
        return struct.pack(">HHHHHH", ident, 0x8180, 1, 1, 0, 0) + question + answer

    def close(self) -> None:
        self.sock.close()
