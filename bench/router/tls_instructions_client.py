#!/usr/bin/env python3
"""Sequential TLS connections for bench/router/tls_instructions.sh.

Usage: tls_instructions_client.py PORT COUNT MODE
MODE handshake: each connection hand-shakes (TLS 1.3, no SNI, no resumption) and closes;
MODE get: each also sends one GET / HTTP/1.1 with Connection: close and reads the answer
to the end. Exits non-zero if an answer is not a 200.
"""
import socket
import ssl
import sys


def main():
    port, count, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    for _ in range(count):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30))
        if mode == "get":
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n")
            answer = b""
            try:
                while True:
                    part = s.recv(65536)
                    if not part:
                        break
                    answer += part
            except ssl.SSLError:
                pass
            if not answer.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"no 200 answer: {answer[:80]!r}")
        s.close()


if __name__ == "__main__":
    main()
