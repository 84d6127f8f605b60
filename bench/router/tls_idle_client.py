#!/usr/bin/env python3
"""Idle TLS connections and the memory a proxy holds for them (bench/router/tls_idle_memory.sh).

Usage: tls_idle_client.py PORT COUNT PID
Opens 50 connections (warm-up), reads PID's resident memory, opens COUNT more, each with
one keep-alive GET answered (so each connection sits in its idle keep-alive state), waits
SETTLE seconds (2: ferry's router frees an idle connection's TLS record buffers after 1 s),
reads the resident memory again and prints "COUNT KIB_BEFORE KIB_AFTER
KIB_PER_CONNECTION". The connections stay open until the script exits.
"""
import os
import socket
import ssl
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for {pid}")


def main():
    port, count, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    settle = float(os.environ.get("SETTLE", "2"))
    request = b"GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conns = []

    def open_one():
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
        s.sendall(request)
        if not s.recv(4096).startswith(b"HTTP/1.1 200"):
            raise SystemExit("no 200 answer")
        return s

    for _ in range(50):
        conns.append(open_one())
    time.sleep(0.5)
    before = rss_kib(pid)
    for _ in range(count):
        conns.append(open_one())
    time.sleep(settle)
    after = rss_kib(pid)
    print(count, before, after, f"{(after - before) / count:.1f}")


if __name__ == "__main__":
    main()
