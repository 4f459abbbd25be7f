"""The SMTP transaction driver against a relay that offers PIPELINING (a small real server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from agents.render.mime import build_email
from agents.sender.smtp import PermanentDeliveryError, SmtpSender, TransientDeliveryError
from agents.sender.smtp_session import SendAbandoned
from streams.settings import SmtpRelay

pytestmark = pytest.mark.integration


@dataclass
class PipeliningRelay:
    """Answers EHLO with PIPELINING; refuses what `refuse` names; records each write it read."""

    refuse: dict[str, str] = field(default_factory=dict)
    reads: list[bytes] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay ready\r\n")
        in_data, body = False, b""
        while line := await reader.readline():
            self.reads.append(line)
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    self.messages.append(body)
                    writer.write(self.refuse.get("END", "250 2.0.0 queued as Q1").encode() + b"\r\n")
                    body = b""
                else:
                    body += line[1:] if line.startswith(b"..") else line
                continue
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].strip().upper().decode()
            if verb == "EHLO":
                writer.write(b"250-relay\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb in self.refuse:
                writer.write(self.refuse[verb].encode() + b"\r\n")
            elif verb == "DATA":
                if "RCPT" in self.refuse or "MAIL" in self.refuse:
                    writer.write(b"554 5.5.1 no valid recipients\r\n")
                else:
                    in_data = True
                    writer.write(b"354 go ahead\r\n")
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()


@pytest.fixture
async def relay() -> AsyncIterator[PipeliningRelay]:
    state = PipeliningRelay()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state
        server.close()


def message(message_id: str = "m1", text: str = "hello\n.starts with a dot"):
    return build_email(subject="Hi", text=text, html="<p>hi</p>", to="ana@example.com",
                       message_id=message_id, mail_from="n@nudge.test", domain="nudge.test")


async def test_a_pipelined_transaction_delivers_each_message_intact_on_one_connection(relay):
    sender = SmtpSender(SmtpRelay(host="127.0.0.1", port=relay.port), timeout=5)
    try:
        assert await sender.send(message("m1")) == "250 2.0.0 queued as Q1"
        assert await sender.send(message("m2")) == "250 2.0.0 queued as Q1"
    finally:
        await sender.close()
    assert len(relay.messages) == 2
    assert message("m1").data == relay.messages[0]
    commands = [r for r in relay.reads if r.startswith((b"MAIL", b"RCPT", b"DATA"))]
    assert commands[:3] == [b"MAIL FROM:<n@nudge.test>\r\n", b"RCPT TO:<ana@example.com>\r\n", b"DATA\r\n"]


async def test_a_refused_recipient_is_a_hard_bounce_and_the_connection_keeps_working(relay):
    relay.refuse["RCPT"] = "550 5.1.1 no such user"
    sender = SmtpSender(SmtpRelay(host="127.0.0.1", port=relay.port), timeout=5)
    try:
        with pytest.raises(PermanentDeliveryError) as refused:
            await sender.send(message("m1"))
        assert (refused.value.code, refused.value.hard_bounce) == (550, True)
        del relay.refuse["RCPT"]
        assert (await sender.send(message("m2"))).startswith("250")
    finally:
        await sender.close()
    assert [r for r in relay.reads if r.startswith(b"RSET")] == [b"RSET\r\n"]
    assert len(relay.messages) == 1


async def test_a_refused_sender_is_permanent_but_no_bounce_of_the_recipient(relay):
    relay.refuse["MAIL"] = "553 5.7.1 sender not allowed"
    sender = SmtpSender(SmtpRelay(host="127.0.0.1", port=relay.port), timeout=5)
    try:
        with pytest.raises(PermanentDeliveryError) as refused:
            await sender.send(message())
    finally:
        await sender.close()
    assert (refused.value.code, refused.value.hard_bounce) == (553, False)


async def test_a_421_marks_the_relay_down(relay):
    relay.refuse["MAIL"] = "421 4.3.2 shutting down"
    sender = SmtpSender(SmtpRelay(host="127.0.0.1", port=relay.port), timeout=5)
    try:
        with pytest.raises(TransientDeliveryError) as refused:
            await sender.send(message())
    finally:
        await sender.close()
    assert refused.value.relay_down and sender.health.down


async def test_a_refused_message_after_its_data_is_permanent(relay):
    relay.refuse["END"] = "554 5.6.0 message refused"
    sender = SmtpSender(SmtpRelay(host="127.0.0.1", port=relay.port), timeout=5)
    try:
        with pytest.raises(PermanentDeliveryError) as refused:
            await sender.send(message())
    finally:
        await sender.close()
    assert refused.value.code == 554 and not sender.health.down


async def test_a_message_whose_claim_ran_out_mid_exchange_is_abandoned_before_the_relay_has_it(relay):
    asked = []

    def still_ours() -> bool:
        asked.append(True)
        return len(asked) > 1  # no at the last moment of the first message, yes afterwards

    sender = SmtpSender(SmtpRelay(host="127.0.0.1", port=relay.port), timeout=5)
    try:
        with pytest.raises(SendAbandoned):
            await sender.send(message("m1"), still_ours)
        assert relay.messages == []
        assert (await sender.send(message("m2"), still_ours)).startswith("250")
    finally:
        await sender.close()
    assert relay.messages == [message("m2").data]
    # The first connection asked for DATA, then closed without ending it.
    assert [r for r in relay.reads if r.startswith(b"DATA")] == [b"DATA\r\n", b"DATA\r\n"]
