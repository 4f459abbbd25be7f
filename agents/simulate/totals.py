"""What a simulation amounts to per campaign and step: journeys entered, converted, exited and
completed; emails and webhooks per step, and the emails that failed to render. Pure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from schemas.commands import CallWebhook, Command, JourneyEvent, SendEmail

JOURNEY_EVENTS = ("entered", "converted", "exited", "completed")


@dataclass
class StepTotals:
    """One step of one campaign: what it sends (template or webhook URL) and how often."""

    step: str
    action: str
    count: int = 0
    render_failures: int = 0


@dataclass
class CampaignTotals:
    """Journey metrics and per-step counts of one campaign."""

    campaign: str
    journeys: Counter[str] = field(default_factory=Counter)
    steps: dict[tuple[str, str], StepTotals] = field(default_factory=dict)

    def step(self, step: str, action: str) -> StepTotals:
        """The counts of one step (created on first use)."""
        key = (step, action)
        if key not in self.steps:
            self.steps[key] = StepTotals(step, action)
        return self.steps[key]


def _step_order(step: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in step.split("."))


@dataclass
class Totals:
    """Per-campaign totals, added to one command at a time."""

    campaigns: dict[str, CampaignTotals] = field(default_factory=dict)

    def _of(self, campaign: str) -> CampaignTotals:
        if campaign not in self.campaigns:
            self.campaigns[campaign] = CampaignTotals(campaign)
        return self.campaigns[campaign]

    def add(self, command: Command, render_failed: bool = False) -> None:
        """Count one command (journey events, sends, webhook calls; others are ignored)."""
        if isinstance(command, JourneyEvent) and command.event in JOURNEY_EVENTS:
            self._of(command.campaign_id).journeys[command.event] += 1
        elif isinstance(command, SendEmail):
            campaign = command.campaign_id or "(no campaign)"
            counts = self._of(campaign).step(command.step or "-", f"send {command.template}")
            counts.count += 1
            counts.render_failures += render_failed
        elif isinstance(command, CallWebhook):
            counts = self._of(command.campaign_id or "(no campaign)").step("-", f"webhook {command.url}")
            counts.count += 1

    def lines(self) -> list[str]:
        """The totals as text, one campaign after another, steps in step order."""
        out = []
        for name in sorted(self.campaigns):
            c = self.campaigns[name]
            out.append(f"campaign {name}: " + ", ".join(f"{k} {c.journeys.get(k, 0)}" for k in JOURNEY_EVENTS))
            for s in sorted(c.steps.values(), key=lambda s: (_step_order(s.step), s.action)):
                failed = f" ({s.render_failures} failed to render)" if s.render_failures else ""
                out.append(f"  step {s.step:<8} {s.action}: {s.count}{failed}")
        return out

    def as_json(self) -> dict[str, object]:
        """The totals as plain data."""
        return {
            name: {
                **{k: c.journeys.get(k, 0) for k in JOURNEY_EVENTS},
                "steps": [
                    {"step": s.step, "action": s.action, "count": s.count, "render_failures": s.render_failures}
                    for s in sorted(c.steps.values(), key=lambda s: (_step_order(s.step), s.action))
                ],
            }
            for name, c in sorted(self.campaigns.items())
        }
