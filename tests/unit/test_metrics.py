"""`streams/metrics.py`: every metric the operators' dashboard needs, with counts-only labels."""

from __future__ import annotations

import ast
from pathlib import Path

from streams import metrics

# Labels are small fixed vocabularies; a person id, address or property never becomes one.
ALLOWED_LABELS = {"kind", "outcome", "stage", "topic", "partition", "status", "route", "method"}


def _families() -> dict[str, object]:
    return {family.name: family for family in metrics.REGISTRY.collect()}


def test_every_metric_the_operators_need_is_exported() -> None:
    names = set(_families())
    for name in (
        "nudge_inputs", "nudge_decisions", "nudge_decide_seconds", "nudge_consumer_lag",
        "nudge_timers_pending", "nudge_outbox_messages", "nudge_deliveries",
        "nudge_render_failures", "nudge_http_requests", "nudge_duplicate_deliveries",
    ):
        assert name in names, name


def test_labels_are_fixed_vocabularies_only() -> None:
    for value in vars(metrics).values():
        labels = getattr(value, "_labelnames", None)
        if labels is not None:
            assert set(labels) <= ALLOWED_LABELS, (value, labels)


def test_render_is_prometheus_text_with_counter_totals() -> None:
    metrics.INPUTS.labels(kind="track").inc()
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    assert b'nudge_inputs_total{kind="track"}' in body
    assert b"# TYPE nudge_decide_seconds histogram" in body


def test_the_module_imports_nothing_of_ours() -> None:
    tree = ast.parse(Path(metrics.__file__).read_text())
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported <= {"__future__", "prometheus_client"}, imported
