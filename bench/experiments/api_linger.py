"""EXPERIMENT (bench only): the API with the publisher lingering NUDGE_BENCH_LINGER seconds (default 0.02).

At a steady 1,000 events/s a 2 ms linger flushes about two inputs, spread over four partitions:
nearly one Kafka message per input, each paying Faust's per-message cost in the worker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os

from streams.http import publisher
from streams.settings import Settings

publisher.InputPublisher.__init__ = functools.partialmethod(  # type: ignore[method-assign]
    publisher.InputPublisher.__init__, linger=float(os.environ.get("NUDGE_BENCH_LINGER", "0.02"))
)

if __name__ == "__main__":
    from streams.http.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve(Settings.from_env()))
