#!/usr/bin/env python3
"""A byte forwarder for tests that put a process in a network namespace of
its own: the only way out of it is a Unix socket in the file system.

    nsfwd.py unix SOCKET PORT READY   outside: SOCKET -> 127.0.0.1:PORT
    nsfwd.py tcp PORT SOCKET READY    inside:  127.0.0.1:PORT -> SOCKET

Each listens on loopback or a Unix socket only, touches READY once it
listens, and forwards each connection both ways until either side closes.
"""
import os
import socket
import sys
import threading


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(listener, connect):
    while True:
        conn, _ = listener.accept()
        try:
            peer = connect()
        except OSError:
            conn.close()
            continue
        for a, b in ((conn, peer), (peer, conn)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()


def main():
    mode, a, b, ready = sys.argv[1:5]
    if mode == "unix":
        path, port = a, int(b)
        if os.path.exists(path):
            os.unlink(path)
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(path)
        connect = lambda: socket.create_connection(("127.0.0.1", port))
    else:
        port, path = int(a), b
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", port))

        def connect():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
    lst.listen(64)
    open(ready, "w").close()
    serve(lst, connect)


if __name__ == "__main__":
    main()
