"""Every Prometheus metric Nudge exports, defined once by name; other modules import and update them.

Imports nothing of ours (only `prometheus_client`), so the pure side can count without pulling
in Faust or asyncpg. Labels are small fixed vocabularies (input kind, outcome, status, route
pattern, partition): never a person id, an address or an event property, so `/metrics` shows
counts only. `/metrics` on the worker and on the API both serve `REGISTRY` (`render()`).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

# Our own registry: the process and platform collectors, and Nudge's metrics, nothing that a
# dependency might register on the default one.
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# --- the person agent (worker) -----------------------------------------------------------------
INPUTS = Counter(
    "nudge_inputs",
    "Inputs read from the input topic, by input kind (identify, track, wake, delivery, ...).",
    ["kind"],
    registry=REGISTRY,
)
DECISIONS = Counter(
    "nudge_decisions",
    "Inputs decided (replays skipped by the replay guard are not counted), by outcome: "
    "applied, or failed (sent to the dead-letter topic).",
    ["outcome"],
    registry=REGISTRY,
)
DECIDE_SECONDS = Histogram(
    "nudge_decide_seconds",
    "Time spent in the pure decision function per input.",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
    registry=REGISTRY,
)
COMMANDS = Counter(
    "nudge_commands",
    "Commands emitted by decisions, by command kind (send_email, journey_event, activity, ...).",
    ["kind"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "nudge_dead_letters",
    "Records parked on the dead-letter topic, by the stage that parked them.",
    ["stage"],
    registry=REGISTRY,
)
TIMERS_PENDING = Gauge(
    "nudge_timers_pending",
    "Timers waiting in this worker's index (for the partitions it owns).",
    registry=REGISTRY,
)
TIMERS_FIRED = Counter(
    "nudge_timers_fired",
    "Due timers turned into wake inputs.",
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "nudge_consumer_lag",
    "Messages between this worker's position and the end of each assigned partition.",
    ["topic", "partition"],
    registry=REGISTRY,
)
PARTITIONS_ASSIGNED = Gauge(
    "nudge_partitions_assigned",
    "Topic partitions assigned to this worker.",
    registry=REGISTRY,
)

# --- delivery (sender agent and delivery loops) ------------------------------------------------
OUTBOX_DEPTH = Gauge(
    "nudge_outbox_messages",
    "Rows in the outbox by status (queued, sending, sent, failed), as of the last sample.",
    ["status"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "nudge_deliveries",
    "Delivery attempts by outcome: sent, retry (transient failure), failed (permanent), "
    "suppressed, limited, unsubscribed.",
    ["outcome"],
    registry=REGISTRY,
)
DUPLICATE_DELIVERIES = Counter(
    "nudge_duplicate_deliveries",
    "Send commands whose message id was already in the outbox (a replay), so nothing was queued.",
    registry=REGISTRY,
)
DELIVERY_LEASES_RECLAIMED = Counter(
    "nudge_delivery_leases_reclaimed",
    "Claimed messages whose lease was taken back before their outcome was recorded (the loop "
    "died, stalled or restarted), by outcome: owner_restarted, expired. Each may have reached the "
    "relay, so this bounds the duplicates a crash can cause.",
    ["outcome"],
    registry=REGISTRY,
)
DELIVERY_RESENT = Counter(
    "nudge_delivery_resent",
    "Messages the relay accepted again after they were already recorded sent: confirmed duplicates.",
    registry=REGISTRY,
)
RENDER_FAILURES = Counter(
    "nudge_render_failures",
    "Messages whose template failed to render (undefined variable, syntax, size or time limit).",
    registry=REGISTRY,
)
SMTP_SECONDS = Histogram(
    "nudge_smtp_seconds",
    "Time to hand one message to the SMTP relay.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    registry=REGISTRY,
)

# --- the projector -----------------------------------------------------------------------------
PROJECTED = Counter(
    "nudge_projected",
    "Read-model commands written to PostgreSQL, by command kind.",
    ["kind"],
    registry=REGISTRY,
)

# --- HTTP (the API: Track API, Segment, webhooks, read side, console) --------------------------
HTTP_REQUESTS = Counter(
    "nudge_http_requests",
    "HTTP requests by route pattern (not the path: ids stay out of labels), method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "nudge_http_request_seconds",
    "Time to answer an HTTP request, by route pattern.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
INPUTS_ACCEPTED = Counter(
    "nudge_inputs_accepted",
    "Inputs accepted over HTTP and published to the input topic, by input kind.",
    ["kind"],
    registry=REGISTRY,
)


def render() -> tuple[bytes, str]:
    """The registry in Prometheus' text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
