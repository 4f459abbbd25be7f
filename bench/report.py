"""Writes results.json, RESULTS.md and latency.png from the sections' figures."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.png import line_chart


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, Python, Kafka and the load when the report was written."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")))
    from deploy.local.kafka import KAFKA_VERSION
    try:
        import faust
        faust_version = faust.__version__
    except ImportError:
        faust_version = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
            "python": platform.python_version(), "kafka": KAFKA_VERSION, "faust": faust_version,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "commit": _git("rev-parse", "--short", "HEAD"), "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        value = f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2g}%"


def targets(s: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, met?) for the targets of the hot-path issue (issue 10)."""
    rows = []
    proc = _get(s, "processing") or {}
    runs = {v["envelope_inputs"]: v for v in proc.values() if isinstance(v, dict) and "inputs_per_s" in v}
    if 100 in runs:
        run = runs[100]
        ratio = run.get("ratio_to_consume_and_decode")
        rows.append(("envelopes of 100: ≥ 20,000 inputs/s (≥ 5% of consume + decode)",
                     f"{_fmt(run['inputs_per_s'])} inputs/s ({_pct(ratio)} of consume + decode), "
                     f"{_fmt(run.get('cpu_us_per_input'))} µs CPU/input",
                     "met" if run["inputs_per_s"] >= 20_000 else "missed"))
    if 1 in runs:
        run = runs[1]
        rows.append(("single-input messages: ≥ 5,000 inputs/s", f"{_fmt(run['inputs_per_s'])} inputs/s",
                     "met" if run["inputs_per_s"] >= 5_000 else "missed"))
    lat = _get(s, "latency") or {}
    if "p99_ms" in lat:
        rate = lat["load"]["background_events_per_s"]
        rows.append(("p99 HTTP 200 → SMTP accepted < 500 ms at 2,000 events/s",
                     f"{_fmt(lat['p99_ms'])} ms at {_fmt(rate)} events/s",
                     "met" if lat["p99_ms"] < 500 and rate >= 1900 else "missed"))
    tim = _get(s, "timers") or {}
    if "sends_all" in tim:
        how = "" if tim["timers"] >= 100_000 else f" (for {tim['timers']:,} timers)"
        rows.append(("100,000 timers due at one instant all fired within 10 s",
                     f"{_fmt(tim['sends_all'])} s{how}",
                     ("met" if tim["sends_all"] <= 10 else "missed") if tim["timers"] >= 100_000
                     else "not measured at 100,000 (`--timers 100000`)"))
    st = _get(s, "state") or {}
    if "worker_rss_mib" in st:
        measured = st["people"] >= 1_000_000
        rows.append(("1,000,000 people on one worker (measured): RSS < 1 GiB",
                     f"{_fmt(st['worker_rss_mib'])} MiB for {st['people']:,} people",
                     ("met" if st["worker_rss_mib"] < 1024 else "missed") if measured
                     else "not measured at 1,000,000 (`--state-people 1000000`)"))
    rec = _get(s, "recovery") or {}
    if rec.get("restored"):
        measured = rec["people"] >= 1_000_000
        rows.append(("cold restore of 1,000,000 people onto an empty data dir < 2 minutes",
                     f"{_fmt(rec['spawn_to_marker_applied_s'])} s from spawn to a marker applied on every "
                     f"partition, for {rec['people']:,} people (includes the 10 s session timeout)",
                     ("met" if rec["spawn_to_marker_applied_s"] < 120 else "missed") if measured
                     else "not measured at 1,000,000"))
    return rows


def markdown(s: dict[str, Any], args: dict[str, Any], host: dict[str, Any]) -> str:
    lines = ["# Nudge benchmark results", "",
             f"Written by `.venv/bin/python -m bench.run` at {host['at']} (commit {host['commit']}).",
             f"Machine: {host['cpu']}, {host['cores']} cores, {host['memory_gib']} GiB; Python {host['python']}, "
             f"Kafka {host['kafka']} (KRaft, one broker, local), Faust {host['faust']}; "
             f"load average when written {host['load_average']}.",
             "What the figures mean, the profiles and the fixes: `docs/performance.md`.",
             "Workers: " + ", ".join(sorted({f"{n}: {v.get('worker', 'nudge worker')}" for n, v in s.items() if isinstance(v, dict)})) + ".", "",
             "## Targets", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {ok} |" for t, m, ok in targets(s)]
    ceiling = s.get("ceiling") or {}
    proc = s.get("processing") or {}
    if ceiling or proc:
        lines += ["", "## Ceiling and processing (inputs/s)", "",
                  "| message shape | bytes/msg | raw produce | raw consume | consume + decode | Nudge worker | "
                  "worker / raw consume | worker / consume+decode | worker CPU per input |", "|---|---|---|---|---|---|---|---|---|"]
        for key in sorted(set(ceiling) | set(proc)):
            c, p = ceiling.get(key) or {}, proc.get(key) or {}
            if not isinstance(c, dict) or not isinstance(p, dict) or key == "section_seconds":
                continue
            lines.append(f"| {key.replace('_', ' ')} | {_fmt(c.get('mean_message_bytes') or p.get('mean_message_bytes'))} | "
                         f"{_fmt(_get(c, 'produce', 'inputs_per_s'))} | {_fmt(_get(c, 'consume', 'inputs_per_s'))} | "
                         f"{_fmt(_get(c, 'consume_decode', 'inputs_per_s'))} | {_fmt(p.get('inputs_per_s'))} | "
                         f"{_pct(p.get('ratio_to_raw_consume'))} | {_pct(p.get('ratio_to_consume_and_decode'))} | "
                         f"{_fmt(p.get('cpu_us_per_input'), ' µs')} |")
        sizes = [f"{k}: {v['inputs']:,} inputs over {v['people']:,} people" for k, v in proc.items() if isinstance(v, dict) and "inputs" in v]
        lines += ["", "Processing: " + "; ".join(sizes) + ", bench campaigns active, one worker (4 partitions), "
                  "SMTP to the bench's in-process sink."]
    ing = s.get("ingest") or {}
    if "single" in ing:
        lines += ["", "## Ingest (HTTP → input topic, acknowledged by Kafka)", "",
                  "| path | events/s | inputs per Kafka message written | bytes per message |", "|---|---|---|---|"]
        for mode, name in (("single", "Track API, 1 event/request"), ("batch", "Segment /v1/batch, 100 events/request")):
            r = ing.get(mode) or {}
            lines.append(f"| {name} ({r.get('concurrency')} clients) | {_fmt(r.get('events_per_s'))} | "
                         f"{_fmt(_get(r, 'written', 'inputs_per_message'))} | {_fmt(_get(r, 'written', 'mean_message_bytes'))} |")
    lat = s.get("latency") or {}
    if "p50_ms" in lat:
        lines += ["", "## Latency: HTTP 200 → SMTP accepted", "",
                  f"Background load {_fmt(lat['load']['background_events_per_s'])} events/s (Track API, target "
                  f"{_fmt(lat['load']['target_background_events_per_s'])}), probes 10/s for {lat['load']['seconds']:.0f} s "
                  f"({lat['probes']} probes): p50 **{_fmt(lat['p50_ms'])} ms**, p90 {_fmt(lat['p90_ms'])} ms, "
                  f"p99 **{_fmt(lat['p99_ms'])} ms**, max {_fmt(lat['max_ms'])} ms.",
                  f"Idle system, {lat['idle_probes']} single events one at a time: median **{_fmt(lat['idle_median_ms'])} ms**. "
                  "Plot: `latency.png` (p50 and p99 per 2-second window over the loaded run)."]
        for other in lat.get("other_rates", []):
            lines.append(f"At {_fmt(other['load']['background_events_per_s'])} background events/s: p50 "
                         f"{_fmt(other['p50_ms'])} ms, p99 {_fmt(other['p99_ms'])} ms, max {_fmt(other['max_ms'])} ms "
                         f"({other['probes']} probes).")
    tim = s.get("timers") or {}
    if "sends_all" in tim:
        lines += ["", "## Timers", "",
                  f"{tim['timers']:,} timers due at one instant (armed {tim['armed_before_due_s']} s before): first send "
                  f"command {_fmt(tim.get('first_send'))} s after due, all {_fmt(tim['sends_all'])} s after due "
                  f"({_fmt(tim.get('fired_per_s'))}/s), all in the outbox {_fmt(tim.get('outbox_all'))} s after due."]
    st = s.get("state") or {}
    if "bytes_per_person" in st:
        lines += ["", "## State", "",
                  f"{st['people']:,} people (identify + one action each, loaded at {_fmt(st['load_inputs_per_s'])} inputs/s): "
                  f"RocksDB data dir {_fmt(st['data_dir_bytes'] / 2**20)} MiB = **{_fmt(st['bytes_per_person'])} bytes/person**; "
                  f"worker RSS **{_fmt(st['worker_rss_mib'])} MiB** (peak {_fmt(st['worker_peak_rss_mib'])} MiB)"
                  + (f", {_fmt(st['rss_at_1m_mib_extrapolated'])} MiB at 1,000,000 by linear extrapolation." if "rss_at_1m_mib_extrapolated" in st else ".")]
    rec = s.get("recovery") or {}
    if "spawn_to_marker_applied_s" in rec:
        lines += ["", "## Recovery", "",
                  f"Worker holding {rec['people']:,} people SIGKILLed; new worker, empty data dir: restore complete "
                  f"{_fmt(rec['spawn_to_restore_complete_s'])} s, Ready {_fmt(rec['spawn_to_ready_s'])} s, marker applied "
                  f"{_fmt(rec['spawn_to_marker_applied_s'])} s after spawn (≈ {_fmt(rec['marker_s_per_million_people'])} s per million people). "
                  f"{rec['note']}."]
    sc = s.get("scale") or {}
    if "ratio_2_to_1" in sc:
        lines += ["", "## Scale", "",
                  f"Same processing run, envelopes: one worker {_fmt(sc['workers_1']['inputs_per_s'])} inputs/s, "
                  f"two workers {_fmt(sc['workers_2']['inputs_per_s'])} inputs/s (ratio {sc['ratio_2_to_1']}; "
                  "both workers share the same 2 cores with Kafka and PostgreSQL)."]
    errors = [f"- {name}: {v['error']}" + (f" (first log error: `{v['first_recovery_error'][-120:]}`)" if v.get("first_recovery_error") else "")
              for name, v in s.items() if isinstance(v, dict) and "error" in v]
    if errors:
        lines += ["", "## Sections that failed", "", *errors]
    lines += ["", "Section run times (s): " + ", ".join(f"{n} {v.get('section_seconds')}" for n, v in s.items() if isinstance(v, dict)),
              "", f"Flags of the last invocation (sections run alone keep their own sizes, shown above): {json.dumps({k: args[k] for k in ('events', 'people', 'state_people', 'timers', 'latency_seconds', 'background_rates', 'envelope_sizes', 'worker_module') if k in args})}", ""]
    return "\n".join(lines)


def _windows(samples: list[list[float]], q: float, window: float) -> list[tuple[float, float]]:
    buckets: dict[int, list[float]] = {}
    for t, ms in samples:
        buckets.setdefault(int(t // window), []).append(ms)
    return [((b + 0.5) * window, sorted(v)[min(len(v) - 1, int(q * len(v)))]) for b, v in sorted(buckets.items())]


def latency_png(latency: dict[str, Any], window: float = 2.0) -> bytes:
    """p50 and p99 per window of each loaded run (20 probes a window: its p99 is its maximum)."""
    rate = latency["load"]["target_background_events_per_s"]
    series = {f"p50 {rate:.0f}/s": ((30, 90, 200), _windows(latency["samples"], 0.5, window)),
              f"p99 {rate:.0f}/s": ((220, 60, 40), _windows(latency["samples"], 0.99, window))}
    for other, color in zip(latency.get("other_rates", []), ((40, 160, 60), (150, 60, 180))):
        if "samples" in other:
            series[f"p99 {other['load']['target_background_events_per_s']:.0f}/s"] = (
                color, _windows(other["samples"], 0.99, window))
    return line_chart(series, "time (s)", "latency (ms)")


def write(out: Path, sections: dict[str, Any], args: dict[str, Any]) -> None:
    """Write every output file."""
    host = machine()
    (out / "results.json").write_text(json.dumps({"machine": host, "args": args, "sections": sections}, indent=2) + "\n")
    (out / "RESULTS.md").write_text(markdown(sections, args, host))
    if _get(sections, "latency", "samples"):
        (out / "latency.png").write_bytes(latency_png(sections["latency"]))
