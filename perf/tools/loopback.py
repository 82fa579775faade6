#!/usr/bin/env python3
"""Loopback TCP bandwidth: one stream, 1 MiB writes, for SECONDS (default 3). Prints GB/s.

A stand-in for iperf3 (not installed here); the copy work is the kernel's, so Python's
overhead per 1 MiB call is small. Compare with iperf3 where it exists."""
import socket, sys, threading, time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
received = [0]

def sink():
    conn, _ = srv.accept()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while True:
        n = conn.recv_into(view)
        if n == 0:
            break
        received[0] += n

t = threading.Thread(target=sink)
t.start()
c = socket.create_connection(srv.getsockname())
payload = b"\x5a" * (1 << 20)
start = time.monotonic()
while time.monotonic() - start < seconds:
    c.sendall(payload)
c.close()
t.join()
elapsed = time.monotonic() - start
print(f"{received[0] / elapsed / 1e9:.3f}")
