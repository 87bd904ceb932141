"""A Redis SUBSCRIBE on a socket of this process's own, for the near cache.

Not redis-py's PubSub: the near cache asks, on every lookup and without a
lock, whether the subscription has unread bytes (a zero-timeout select on
the socket), and redis-py keeps its socket private. The protocol is read with
hiredis, the parser redis-py itself uses when it is installed.
"""
from __future__ import annotations

import socket
import ssl

import hiredis
from redis.connection import SSLConnection, parse_url


class SubscriptionLost(Exception):
    """Closed, refused, or answered with an error: subscribe again."""


def _pack(*args: bytes | str) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class Subscription:
    def __init__(self, url: str, channel: str, timeout: float):
        """Connect and subscribe, each step within `timeout`; then reads never block."""
        options = parse_url(url)
        try:
            if "path" in options:  # unix://
                sock = socket.socket(socket.AF_UNIX)
                sock.settimeout(timeout)
                sock.connect(options["path"])
            else:
                host = options.get("host", "localhost")
                sock = socket.create_connection((host, options.get("port", 6379)), timeout)
                if options.get("connection_class") is SSLConnection:  # rediss://
                    sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        except OSError as error:
            raise SubscriptionLost(str(error)) from error
        self._socket = sock
        self._reader = hiredis.Reader()
        try:
            if options.get("password"):
                credentials = [options["username"]] if options.get("username") else []
                self.send("AUTH", *credentials, options["password"])
                self._expect(b"OK")
            self.send("SUBSCRIBE", channel)
            self._expect([b"subscribe", channel.encode(), 1])
            sock.setblocking(False)
        except (OSError, SubscriptionLost):
            self.close()
            raise

    def fileno(self) -> int:
        """For select(): readable when Redis sent something."""
        return self._socket.fileno()

    def send(self, *args: bytes | str) -> None:
        try:
            self._socket.sendall(_pack(*args))
        except OSError as error:
            raise SubscriptionLost(str(error)) from error

    def replies(self) -> list:
        """Every reply received so far ([b"message", channel, data],
        [b"pong", token], ...), without waiting for more."""
        while True:
            try:
                data = self._socket.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                break
            except OSError as error:
                raise SubscriptionLost(str(error)) from error
            if not data:
                raise SubscriptionLost("closed by Redis")
            self._reader.feed(data)
        replies = []
        while (reply := self._reader.gets()) is not False:
            if isinstance(reply, hiredis.ReplyError):
                raise SubscriptionLost(str(reply))
            replies.append(reply)
        return replies

    def _expect(self, expected) -> None:
        """Block (within the socket's timeout) for the next reply; it must be `expected`."""
        while (reply := self._reader.gets()) is False:
            try:
                data = self._socket.recv(65536)
            except OSError as error:
                raise SubscriptionLost(str(error)) from error
            if not data:
                raise SubscriptionLost("closed by Redis")
            self._reader.feed(data)
        if reply != expected:
            raise SubscriptionLost(f"unexpected reply {reply!r}")

    def close(self) -> None:
        self._socket.close()
