"""Hand built messages (agents/render/mime.py) to the SMTP relay over kept-open connections.

Failures are classified: `TransientDeliveryError` (retry later) or `PermanentDeliveryError`
(fail the message). Both carry the SMTP code (0 when there was none) and the server's words.
A transient error about the relay itself (unreachable, dropped connection, timeout, 421,
refused credentials) marks the relay down (`RelayHealth`): the delivery loops stop claiming,
the message goes back to the queue without counting an attempt, and one probe every few
seconds finds the relay back, so everything due leaves within seconds of its return.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiosmtplib

from agents.render.mime import OutgoingEmail
from agents.sender.smtp_session import MailSession, SendAbandoned, SessionLost, SmtpReplyError
from schemas.errors import DeliveryError
from streams.rate_limit import TokenBucket
from streams.settings import SmtpRelay


class RelayRefusal(DeliveryError):
    """The relay did not accept a message; its subclass says whether a retry can help."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code} {message}" if code else message)


class TransientDeliveryError(RelayRefusal):
    """Worth retrying later: 4xx replies, connection trouble, timeouts, relay misconfiguration.

    `relay_down` is True when the trouble is the relay's, not the message's.
    """

    def __init__(self, code: int, message: str, *, relay_down: bool = False) -> None:
        super().__init__(code, message)
        self.relay_down = relay_down


class PermanentDeliveryError(RelayRefusal):
    """Retrying will not help: a 5xx reply (the address or the message was refused).

    `hard_bounce` is True when the reply was about the recipient (RCPT TO or DATA), so the
    address should be suppressed; False when the relay refused our sender (MAIL FROM).
    """

    def __init__(self, code: int, message: str, *, hard_bounce: bool = True) -> None:
        super().__init__(code, message)
        self.hard_bounce = hard_bounce


class RelayHealth:
    """Whether the relay is reachable, shared by every connection to it and every loop using it."""

    def __init__(
        self, *, probe_every: float = 2.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self.down = False
        self.reason = ""
        self.probe_every = probe_every
        self._sleep = sleep
        self._probing: asyncio.Lock | None = None

    def mark_down(self, reason: str) -> None:
        """The relay failed in a way no message can fix."""
        self.down, self.reason = True, reason

    def mark_up(self) -> None:
        """The relay answered."""
        self.down, self.reason = False, ""

    async def wait_until_up(self, probe: Callable[[], Awaitable[None]]) -> None:
        """Probe every `probe_every` seconds until the relay answers (one prober at a time)."""
        if self._probing is None:
            self._probing = asyncio.Lock()
        async with self._probing:
            while self.down:
                await self._sleep(self.probe_every)
                try:
                    await probe()
                except RelayRefusal as exc:
                    self.reason = str(exc)
                else:
                    self.mark_up()


class MailSender(Protocol):
    """What the delivery loop needs from a sender."""

    health: RelayHealth

    async def send(self, message: OutgoingEmail, still_ours: Callable[[], bool] | None = None) -> str: ...

    async def probe(self) -> None: ...


def classify(exc: BaseException) -> RelayRefusal:
    """Map an aiosmtplib/OS error to a transient or permanent delivery error."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # Every recipient was refused; with one recipient this is that recipient's reply.
        first = exc.recipients[0] if exc.recipients else None
        if first is None:
            return TransientDeliveryError(0, "all recipients refused without a reply")
        return classify(first)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # A relay credential problem fails every message alike: keep them queued for the fix.
        return TransientDeliveryError(
            exc.code, f"SMTP authentication failed (check NUDGE_SMTP_URL): {exc.message}",
            relay_down=True,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if 400 <= exc.code < 500:
            # 421: the service is not available and is closing the connection.
            return TransientDeliveryError(exc.code, exc.message, relay_down=exc.code == 421)
        if 500 <= exc.code < 600:
            # A refused MAIL FROM is about our sender, not the recipient's address.
            return PermanentDeliveryError(
                exc.code, exc.message,
                hard_bounce=not isinstance(exc, aiosmtplib.SMTPSenderRefused),
            )
        return TransientDeliveryError(exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return TransientDeliveryError(
            0, f"relay does not support what NUDGE_SMTP_URL asks: {exc}", relay_down=True
        )
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, ssl.SSLError)):
        # OSError includes SessionLost: the pipelined connection broke.
        return TransientDeliveryError(0, f"{type(exc).__name__}: {exc}", relay_down=True)
    return TransientDeliveryError(0, f"unexpected {type(exc).__name__}: {exc}")


def _reply_error(exc: SmtpReplyError) -> RelayRefusal:
    if 400 <= exc.code < 500:
        return TransientDeliveryError(exc.code, exc.message, relay_down=exc.code == 421)
    if 500 <= exc.code < 600:
        # A refused MAIL FROM is about our sender, not the recipient's address.
        return PermanentDeliveryError(exc.code, exc.message, hard_bounce=exc.stage != "MAIL FROM")
    return TransientDeliveryError(exc.code, f"{exc.stage}: unexpected reply {exc.message}")


class SmtpSender:
    """One reusable SMTP connection to the relay, opened on first use and after a failure.

    aiosmtplib connects (TLS, EHLO, AUTH); `MailSession` then drives the transactions
    (pipelined when the relay offers PIPELINING).
    """

    def __init__(
        self, relay: SmtpRelay, *, timeout: float = 30.0, health: RelayHealth | None = None,
        pipelining: bool = True,
    ) -> None:
        self.relay = relay
        self.timeout = timeout
        self.health = health or RelayHealth()
        self.pipelining = pipelining
        self._conn: aiosmtplib.SMTP | MailSession | None = None
        # One transaction at a time on the connection (a pool hands it to one sender anyway).
        self._busy: asyncio.Lock | None = None

    def _client(self) -> aiosmtplib.SMTP:
        relay = self.relay
        return aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            username=relay.username,
            password=relay.password,
            timeout=self.timeout,
            use_tls=relay.security == "tls",
            # False, not None: None would upgrade opportunistically behind the user's back.
            start_tls=relay.security == "starttls",
            validate_certs=relay.verify_tls,
        )

    async def _connected(self) -> tuple[aiosmtplib.SMTP | MailSession, bool]:
        if self._conn is not None and self._conn.is_connected:
            return self._conn, True
        smtp = self._client()
        self._conn = smtp
        await smtp.connect()
        if smtp.is_ehlo_or_helo_needed:
            try:
                await smtp.ehlo()
            except aiosmtplib.SMTPHeloError:
                await smtp.helo()
        if smtp.transport is not None:
            pipelining = self.pipelining and smtp.supports_extension("pipelining")
            self._conn = MailSession(smtp.transport, self.timeout, pipelining=pipelining)
        return self._conn, False

    async def _transaction(
        self, conn: aiosmtplib.SMTP | MailSession, message: OutgoingEmail, still_ours: Callable[[], bool] | None
    ) -> str:
        if isinstance(conn, MailSession):
            return await conn.send(message, still_ours)
        # aiosmtplib's sendmail runs MAIL to the final dot in one call: checked before it only.
        if still_ours is not None and not still_ours():
            raise SendAbandoned("the claim on this message ran out before it was handed over")
        errors, response = await conn.sendmail(message.sender, [message.recipient], message.data)
        if errors:
            # Some recipients refused while others were accepted (aiosmtplib returns them).
            refused = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in errors.items())
            codes = [r.code for r in errors.values()]
            if all(500 <= code < 600 for code in codes):
                raise PermanentDeliveryError(codes[0], f"recipients refused: {refused}")
            raise TransientDeliveryError(codes[0], f"recipients refused: {refused}")
        return response

    async def send(self, message: OutgoingEmail, still_ours: Callable[[], bool] | None = None) -> str:
        """Send one message; return the relay's reply, or raise Transient/PermanentDeliveryError.

        `still_ours()` is asked at the last moment before the relay gets the whole message;
        False abandons it (SendAbandoned) with nothing delivered.
        """
        if self._busy is None:
            self._busy = asyncio.Lock()
        async with self._busy:
            return await self._send(message, still_ours)

    async def _send(self, message: OutgoingEmail, still_ours: Callable[[], bool] | None) -> str:
        try:
            conn, reused = await self._connected()
            try:
                return await self._transaction(conn, message, still_ours)
            except (aiosmtplib.SMTPServerDisconnected, SessionLost) as exc:
                if not reused or getattr(exc, "message_sent", False):
                    raise
                # The relay dropped an idle connection before the message went: one fresh try.
                await self.close()
                conn, _ = await self._connected()
                return await self._transaction(conn, message, still_ours)
        except RelayRefusal:
            raise
        except SendAbandoned:
            await self.close()
            raise
        except SmtpReplyError as exc:
            # A refusal: the connection itself is fine and stays open.
            error = _reply_error(exc)
        except Exception as exc:
            await self.close()
            error = classify(exc)
        if isinstance(error, TransientDeliveryError) and error.relay_down:
            self.health.mark_down(str(error))
        raise error

    async def probe(self) -> None:
        """Connect if needed and say NOOP; raise TransientDeliveryError if the relay does not answer."""
        if self._busy is None:
            self._busy = asyncio.Lock()
        try:
            async with self._busy:
                conn, _ = await self._connected()
                await conn.noop()
        except Exception as exc:
            await self.close()
            raise (_reply_error(exc) if isinstance(exc, SmtpReplyError) else classify(exc)) from exc

    async def close(self) -> None:
        """Close the connection (politely if possible); the next send reconnects."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.is_connected:
                await conn.quit()
        except Exception:
            # Already broken: just drop the transport.
            conn.close()


class SmtpPool:
    """`size` reusable connections to one relay, and a token bucket on the sending rate.

    `send` waits for its turn under the rate (`rate_per_second`, 0 = unlimited), then for a
    free connection; a connection that failed reconnects on its next use.
    """

    def __init__(
        self,
        relay: SmtpRelay,
        *,
        size: int = 4,
        rate_per_second: float = 0.0,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        probe_every: float = 2.0,
    ) -> None:
        if size < 1:
            raise ValueError(f"an SMTP pool needs at least one connection, got size={size}")
        self.relay = relay
        self.size = size
        self.health = RelayHealth(probe_every=probe_every, sleep=sleep)
        self._senders = [SmtpSender(relay, timeout=timeout, health=self.health) for _ in range(size)]
        self._idle: asyncio.Queue[SmtpSender] | None = None
        # A burst of one second's worth (at least one message).
        self._bucket = TokenBucket(rate=rate_per_second, burst=max(1.0, rate_per_second))
        self._clock = clock
        self._sleep = sleep

    def _queue(self) -> asyncio.Queue[SmtpSender]:
        # Created lazily: a queue belongs to the event loop that first uses it.
        if self._idle is None:
            self._idle = asyncio.Queue()
            for sender in self._senders:
                self._idle.put_nowait(sender)
        return self._idle

    async def send(self, message: OutgoingEmail, still_ours: Callable[[], bool] | None = None) -> str:
        """Send over a free connection once the rate allows; errors as `SmtpSender.send`."""
        wait = self._bucket.reserve(self._clock())
        if wait > 0:
            await self._sleep(wait)
        idle = self._queue()
        sender = await idle.get()
        try:
            return await sender.send(message, still_ours)
        finally:
            idle.put_nowait(sender)

    async def probe(self) -> None:
        """Probe the relay over a free connection (see `SmtpSender.probe`)."""
        idle = self._queue()
        sender = await idle.get()
        try:
            await sender.probe()
        finally:
            idle.put_nowait(sender)

    @property
    def open_connections(self) -> int:
        """How many of the pool's connections are currently open."""
        return sum(
            1 for sender in self._senders if sender._conn is not None and sender._conn.is_connected
        )

    async def close(self) -> None:
        """Close every connection."""
        await asyncio.gather(*(sender.close() for sender in self._senders))
