"""The broadcast agent's surface for the HTTP edge: plan a broadcast, start its scan, read progress.

`streams/http` reaches this agent only through this module (tests/unit/test_layers.py).
"""

from __future__ import annotations

from agents.broadcast.plan import BroadcastError, plan_broadcast
from agents.broadcast.publish import start_scan
from agents.broadcast.store import count_members, scan_status

__all__ = ["BroadcastError", "count_members", "plan_broadcast", "scan_status", "start_scan"]
