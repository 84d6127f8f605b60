#!/usr/bin/env python3
"""One client, one TLS connection after another, for bench/router/tls_sequential.sh.

Usage: tls_sequential_client.py PORT COUNT CA_FILE MODE
MODE "get": hand-shake (SNI bench.test), send `GET / HTTP/1.0` with a Host field, read to
the end; "handshake": hand-shake and close. Python's sockets keep Nagle's algorithm on, as
many client libraries do. Prints how many connections succeeded.
"""
import socket
import ssl
import sys


def main():
    port, count, ca_file, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ctx = ssl.create_default_context(cafile=ca_file)
    ok = 0
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
            with ctx.wrap_socket(raw, server_hostname="bench.test") as tls:
                if mode == "handshake":
                    ok += 1
                    continue
                tls.sendall(b"GET / HTTP/1.0\r\nHost: bench.test\r\n\r\n")
                data = b""
                while True:
                    try:
                        chunk = tls.recv(65536)
                    except (ssl.SSLEOFError, ConnectionResetError):
                        break
                    if not chunk:
                        break
                    data += chunk
                if data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200"):
                    ok += 1
    print(ok)


if __name__ == "__main__":
    main()
