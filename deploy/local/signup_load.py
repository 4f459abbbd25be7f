"""A steady signup load over Nudge's Track API, as a retrying client would send it.

Each person is an identify (`PUT /api/v1/customers/{id}` with an email) followed by a
`signed_up` event. A request that is not answered 200 (refused connection, reset, timeout,
4xx/5xx) is sent again after a short backoff until it is; a person counts as *accepted* only
once both requests were answered 200, which is all a client can know was taken.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

# Backoff between attempts of one request: doubling from the first, capped.
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 2.0


@dataclass
class LoadStats:
    """What the clients saw: who was accepted, and every answer on the way."""

    started: int = 0
    # Person ids in the order their signup completed (both requests answered 200).
    accepted: list[str] = field(default_factory=list)
    # HTTP status (or exception class name) -> how many answers of that kind.
    answers: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    # When the last person was accepted (time.time()).
    last_accepted_at: float = 0.0
    # Person id -> when its signup completed (time.time()).
    accepted_at: dict[str, float] = field(default_factory=dict)

    @property
    def unaccepted(self) -> int:
        """People started but never answered 200 on both requests before the load stopped."""
        return self.started - len(self.accepted)

    @property
    def server_errors(self) -> int:
        """Answers with a 5xx status."""
        return sum(n for answer, n in self.answers.items() if answer.startswith("5"))


def email_of(person: str, domain: str = "example.com") -> str:
    """The email address the load gives `person`."""
    return f"{person}@{domain}"


class SignupLoad:
    """People signing up at `rate` per second until `stop()`, in a thread of its own."""

    def __init__(
        self,
        base_url: str,
        auth: tuple[str, str],
        *,
        rate: float,
        prefix: str = "p",
        event: str = "signed_up",
        request_timeout: float = 15.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.rate = rate
        self.prefix = prefix
        self.event = event
        self.request_timeout = request_timeout
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self.stats = LoadStats()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._drain_timeout = 0.0

    def start(self) -> SignupLoad:
        """Begin signing people up."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="signup-load")
        self._thread.start()
        return self

    def stop(self, drain_timeout: float = 90.0) -> LoadStats:
        """Start nobody new; wait up to `drain_timeout` s for the people begun to be accepted."""
        self._drain_timeout = drain_timeout
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        return self.snapshot()

    def snapshot(self) -> LoadStats:
        """A copy of the stats so far."""
        with self._lock:
            return LoadStats(
                started=self.stats.started,
                accepted=list(self.stats.accepted),
                answers=Counter(self.stats.answers),
                retries=self.stats.retries,
                last_accepted_at=self.stats.last_accepted_at,
                accepted_at=dict(self.stats.accepted_at),
            )

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            people: set[asyncio.Task[None]] = set()
            began = time.monotonic()
            n = 0
            while not self._stopping.is_set():
                due = began + n / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(min(delay, 0.1))
                    continue
                person = f"{self.prefix}-{n:06d}"
                n += 1
                with self._lock:
                    self.stats.started += 1
                task = asyncio.create_task(self._sign_up(session, person))
                people.add(task)
                task.add_done_callback(people.discard)
            if people:
                _, pending = await asyncio.wait(set(people), timeout=self._drain_timeout)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    async def _sign_up(self, session: aiohttp.ClientSession, person: str) -> None:
        await self._until_200(session, "PUT", f"/api/v1/customers/{person}", {"email": email_of(person)})
        await self._until_200(
            session, "POST", f"/api/v1/customers/{person}/events", {"name": self.event, "data": {}}
        )
        with self._lock:
            self.stats.accepted.append(person)
            self.stats.last_accepted_at = self.stats.accepted_at[person] = time.time()

    async def _until_200(
        self, session: aiohttp.ClientSession, method: str, path: str, body: dict[str, object]
    ) -> None:
        wait = FIRST_RETRY_SECONDS
        while True:
            try:
                async with session.request(
                    method, self.base_url + path, json=body, headers=self._headers
                ) as response:
                    await response.read()
                    answer = str(response.status)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                answer = type(exc).__name__
            with self._lock:
                self.stats.answers[answer] += 1
                if answer == "200":
                    return
                self.stats.retries += 1
            await asyncio.sleep(wait)
            wait = min(MAX_RETRY_SECONDS, wait * 2)
