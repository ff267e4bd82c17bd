#!/usr/bin/env python3
"""Time from a server's process start to its first answered Kafka Metadata request.

    metadata_probe.py HOST PORT START_NS TIMEOUT_S [PID]

START_NS is time.time_ns() (date +%s%N) taken just before the server was launched. The probe
connects, sends Metadata v4 for all topics and waits for the whole response, retrying every
5 ms; it prints the elapsed milliseconds once a response arrives, or exits 1 at the timeout,
or as soon as process PID (the server, when given) has exited.
Metadata v4 is used because Kafka 4.x no longer accepts v0-v3, and it is not yet flexible.
"""
import socket
import struct
import sys
import time


def request() -> bytes:
    client = b"strand-bench"
    header = struct.pack(">hhih", 3, 4, 7, len(client)) + client
    body = struct.pack(">i?", -1, False)  # null topic list = all topics; no auto-creation
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def try_once(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(request())
            (size,) = struct.unpack(">i", read_exact(sock, 4))
            body = read_exact(sock, size)
            (correlation,) = struct.unpack(">i", body[:4])
            return correlation == 7
    except OSError:
        return False


def alive(pid: int) -> bool:
    """True while PID runs; an exited child not yet reaped by its parent is a zombie (Z)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main() -> int:
    host, port, start_ns, timeout_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    pid = int(sys.argv[5]) if len(sys.argv) > 5 else None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if try_once(host, port):
            print(f"{(time.time_ns() - start_ns) / 1e6:.1f}")
            return 0
        if pid is not None and not alive(pid):
            print(f"the server (pid {pid}) exited before answering", file=sys.stderr)
            return 1
        time.sleep(0.005)
    print(f"no Metadata answer from {host}:{port} within {timeout_s}s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
