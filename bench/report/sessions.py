"""The "Study wall times" section: how long each `fdabnn ablate` that ran cells took, by executor
and slots, from results/sessions/*.json (written by bench/runner.py), with where it ran."""
from __future__ import annotations

from pathlib import Path

from bench import store
from bench.estimate import format_duration
from bench.report.markdown import table

SESSION_KEYS = {"study", "profile", "executor", "cells_run", "cells", "wall_s"}


def sessions_section(root: Path) -> str:
    sessions = []
    for path in sorted((root / store.SESSIONS).glob("*.json")):
        try:
            session = store.read_json(path)
        except store.TornRecord:
            continue
        if (isinstance(session, dict) and SESSION_KEYS <= session.keys()  # what the table reads
                and all(isinstance(session[k], (int, float)) for k in ("cells_run", "cells", "wall_s"))):
            sessions.append(session)
    if not sessions:
        return ""
    rows = []
    for s in sessions:
        env = s.get("environment", {})
        executor = s["executor"] + (f" at {s['address']}" if s.get("address") else "")
        slots = f"{s['gpus']} GPU x {s['cells_per_gpu']}" if s.get("gpus") else f"{s['slots']} at once"
        statuses = ", ".join(f"{n} {status}" for status, n in s.get("statuses", {}).items())
        rows.append([s["study"], s["profile"], executor, slots, f"{s['cells_run']} of {s['cells']} ({statuses})",
                     format_duration(s["wall_s"]), f"{env.get('cpu_model', '?')} ({env.get('cpu_count', '?')} CPUs)",
                     str(s.get("started_at", ""))[:16], env.get("git_commit", "?")[:12]])
    return "\n".join([
        "## Study wall times", "",
        "Wall time of each `fdabnn ablate` that ran cells, by executor: the cells it ran, how many at once, and "
        "where. Cells run side by side on shared CPU cores record their step times as shared, and the tables "
        "above leave those step times out.", "",
        table(["study", "profile", "executor", "cells at once", "cells run", "wall time", "host", "started", "git"],
              rows), ""])


CLUSTER = "cluster"  # <results>/cluster/*.json: bench/executors/rehearsal.py (`make cluster-rehearsal`)


def cluster_section(root: Path) -> str:
    """The "Ray cluster rehearsal" section: each measurement `make cluster-rehearsal` committed."""
    rows = []
    for path in sorted((root / CLUSTER).glob("*.json")):
        try:
            r = store.read_json(path)
            env, death = r.get("environment", {}), r["node_death"]
            rows.append([f"{r['study']} {r['profile']}", str(r["cells"]), format_duration(r["local"]["wall_s"]),
                         format_duration(r["ray"]["wall_s"]), f"{r['ray_over_local']:.2f}", _outcomes(r.get("outcomes")),
                         _seconds(death.get("lost_declared_s")), _seconds(death.get("next_attempt_started_on_node_s")),
                         f"{env.get('cpu_model', '?')} ({env.get('cpu_count', '?')} CPUs), load "
                         f"{r.get('load_average_before', ['?'])[0]}", str(r.get("measured_at", ""))[:16],
                         str(env.get("git_commit", "?"))[:12]])
        except (store.TornRecord, AttributeError, KeyError, TypeError, ValueError, IndexError):
            continue  # not a rehearsal's record
    if not rows:
        return ""
    return "\n".join([
        "## Ray cluster rehearsal", "",
        "A study with the local executor (2 cells at once) and on a local 3-node Ray cluster (2 worker nodes of 1 "
        "CPU, no access to the store), and a worker node killed while its cell ran: the seconds until the driver "
        "declared the attempt lost and until the next attempt started on the other node (`make cluster-rehearsal`; "
        "README, Running a study anywhere).", "",
        table(["study", "cells", "local", "ray", "ray / local", "ray's cells end as local", "node death: lost", "restarted", "host", "measured",
               "git"], rows), ""])


def _outcomes(outcomes: dict | None) -> str:
    """Whether every cell ended on Ray with the status and final metrics it ended with locally."""
    if not outcomes:
        return "not compared"
    ended = ", ".join(f"{n} {status}" for status, n in sorted(outcomes["ray_statuses"].items()))
    if outcomes["ray_equals_local"]:
        return f"all equal ({ended})"
    threads = {k: outcomes.get(f"{k}_threads") for k in ("local", "ray")}
    why = f"; threads a cell: local {threads['local']}, ray {threads['ray']}" if threads["local"] != threads["ray"] else ""
    return f"{len(outcomes['cells_that_differ'])} differ ({ended} on Ray{why})"


def _seconds(value: object) -> str:
    return f"{value:.1f} s" if isinstance(value, (int, float)) else "?"
