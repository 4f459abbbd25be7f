"""SMTP mail transactions over a connection aiosmtplib opened (TLS, EHLO and AUTH done).

aiosmtplib spends about 200 µs of CPU per message on its per-command machinery (a lock, a
timeout task and an injection check per command): half of what the delivery loop could afford
at a thousand messages a second. `MailSession` takes the transport over and speaks the four
commands of a transaction itself; when the relay offers PIPELINING (RFC 2920), MAIL, RCPT and
DATA go in one write, so a message costs two round trips instead of four.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from agents.render.mime import OutgoingEmail
from schemas.errors import DeliveryError

T = TypeVar("T")

_LEADING_DOT = re.compile(rb"(?m)^\.")
# A reply longer than this is not SMTP: the connection is dropped.
_MAX_REPLY = 64 * 1024


class SmtpReplyError(DeliveryError):
    """The relay answered a command with `code` (not the one the exchange needed)."""

    def __init__(self, stage: str, code: int, message: str) -> None:
        self.stage, self.code, self.message = stage, code, message
        super().__init__(f"{stage}: {code} {message}")


class SendAbandoned(DeliveryError):
    """Not handed over: the loop's claim on the message ran out mid-exchange; it is someone else's."""


class SessionLost(DeliveryError, ConnectionError):
    """The connection closed or timed out in the middle of an exchange.

    `message_sent` is True once the message itself was written: the relay may have it.
    """

    message_sent = False


class _Replies(asyncio.Protocol):
    """Parses replies off the transport in order and hands each to the next waiter."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.ready: deque[tuple[int, str]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.lost: BaseException | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer.extend(data)
        if len(self.buffer) > _MAX_REPLY:
            self.connection_lost(SessionLost("the relay sent an oversized reply"))
            return
        self._parse()

    def _parse(self) -> None:
        lines: list[str] = []
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end == -1:
                break
            line = bytes(self.buffer[start : end + 1])
            start = end + 1
            lines.append(line[4:].strip().decode("utf-8", "replace"))
            if line[3:4] != b"-":
                try:
                    code = int(line[:3])
                except ValueError:
                    code = 0
                self.ready.append((code, "\n".join(lines)))
                lines = []
                del self.buffer[:start]
                start = 0
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or SessionLost("the relay closed the connection")
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done() and (self.ready or self.lost):
            self.waiter.set_result(None)


class MailSession:
    """An open, greeted connection to the relay, for whole mail transactions."""

    def __init__(self, transport: asyncio.BaseTransport, timeout: float, *, pipelining: bool) -> None:
        self._replies = _Replies()
        transport.set_protocol(self._replies)
        self._transport: asyncio.WriteTransport = transport  # type: ignore[assignment]
        self.timeout = timeout
        self.pipelining = pipelining

    @property
    def is_connected(self) -> bool:
        return self._replies.lost is None and not self._transport.is_closing()

    async def _reply(self) -> tuple[int, str]:
        replies = self._replies
        while not replies.ready:
            if replies.lost is not None:
                raise SessionLost(str(replies.lost)) from replies.lost
            replies.waiter = asyncio.get_running_loop().create_future()
            await replies.waiter
        return replies.ready.popleft()

    async def _exchange(self, work: Awaitable[T]) -> T:
        # One timer per exchange, not one timeout task per reply: each costs a few µs.
        def expire() -> None:
            self._replies.connection_lost(
                SessionLost(f"no reply from the relay within {self.timeout:g}s")
            )
            self.close()

        timer = asyncio.get_running_loop().call_later(self.timeout, expire)
        try:
            return await work
        finally:
            timer.cancel()

    def _write(self, data: bytes) -> None:
        if not self.is_connected:
            raise SessionLost("the connection to the relay is closed")
        self._transport.write(data)

    async def _commands(self, commands: tuple[bytes, ...]) -> list[tuple[int, str]]:
        if self.pipelining:
            self._write(b"".join(commands))
            return [await self._reply() for _ in commands]
        replies: list[tuple[int, str]] = []
        for command in commands:
            self._write(command)
            replies.append(reply := await self._reply())
            if reply[0] >= 400:
                break
        return replies + [(503, "not sent: an earlier command was refused")] * (len(commands) - len(replies))

    async def send(self, message: OutgoingEmail, still_ours: Callable[[], bool] | None = None) -> str:
        """MAIL, RCPT, DATA (in one write when pipelining), then the message; the final reply.

        Raises SmtpReplyError for a refusal (the connection stays usable), SessionLost when
        the connection broke or the relay took longer than `timeout` for the whole exchange,
        SendAbandoned when `still_ours()` says no just before the message would be handed over.
        """
        return await self._exchange(self._transaction(message, still_ours))

    async def _transaction(self, message: OutgoingEmail, still_ours: Callable[[], bool] | None) -> str:
        for address in (message.sender, message.recipient):
            if any(c in address for c in "\r\n<>") or not address.isascii():
                raise ValueError(f"address {address!r} cannot go in an SMTP command")
        mail, rcpt, data = await self._commands((
            f"MAIL FROM:<{message.sender}>\r\n".encode("ascii"),
            f"RCPT TO:<{message.recipient}>\r\n".encode("ascii"),
            b"DATA\r\n",
        ))
        if data[0] == 354:
            if mail[0] != 250 or rcpt[0] not in (250, 251):
                # Refused, yet asked for the data: end an empty message and forget it.
                self._write(b".\r\n")
                await self._reply()
            elif still_ours is not None and not still_ours():
                # The last moment to back out: a connection closed inside DATA delivers nothing
                # (RFC 5321 4.1.1.4), while ending the data would hand over a message whose
                # claim ran out (a worker frozen mid-exchange) and another loop may be sending.
                self.close()
                raise SendAbandoned("the claim on this message ran out before it was handed over")
            else:
                body = _LEADING_DOT.sub(b"..", message.data)
                if not body.endswith(b"\r\n"):
                    body += b"\r\n"
                self._write(body + b".\r\n")
                try:
                    code, text = await self._reply()
                except SessionLost as exc:
                    exc.message_sent = True
                    raise
                if code != 250:
                    raise SmtpReplyError("DATA", code, text)
                return f"{code} {text}"
        await self._reset()
        if mail[0] != 250:
            raise SmtpReplyError("MAIL FROM", *mail)
        if rcpt[0] not in (250, 251):
            raise SmtpReplyError("RCPT TO", *rcpt)
        raise SmtpReplyError("DATA", *data)

    async def _reset(self) -> None:
        self._write(b"RSET\r\n")
        await self._reply()

    async def noop(self) -> None:
        """NOOP: raise SmtpReplyError unless the relay answers 250 (SessionLost if it does not answer)."""
        self._write(b"NOOP\r\n")
        code, text = await self._exchange(self._reply())
        if code != 250:
            raise SmtpReplyError("NOOP", code, text)

    async def quit(self) -> None:
        """QUIT politely, then close."""
        try:
            self._write(b"QUIT\r\n")
            await self._exchange(self._reply())
        finally:
            self.close()

    def close(self) -> None:
        """Drop the transport."""
        self._transport.close()
