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
