"""The Ray driver's commits (bench/executors/commit.py): attempts are numbered, only the cell's current
attempt writes the store, a stale one (superseded, or declared lost) changes nothing, a final report
writes the record with the attempts list, numbering goes on across drivers, and nothing but the
store's own files may be sent."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from bench import store
from bench.cell_attempt import Attempt, CellJob
from bench.executors.commit import ATTEMPTS, Committer, Report
from bench.metrics import METRIC_KEYS
from bench.spec import build_spec
from bench.store.lease import host_name


def _record(run_id: str, status: str = "failed") -> dict:
    return store.run_record(build_spec({}), Path(run_id), {}, [], 0.0, status, "why", None)


def _snapshot(run_dir: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(run_dir)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_only_the_current_attempt_writes_the_store(tmp_path):
    runs, run = tmp_path / "runs", "cell"
    committer = Committer(runs)
    assert committer.begin(run) == 1
    assert committer.accept(Report(run, 1, "node-a", {store.PROGRESS: b"[1]", "checkpoint.pt": b"epoch 1"}))
    committer.end(run, 1, "lost: NodeDiedError: the node died")
    before = _snapshot(runs / run)
    # declared lost: the attempt still runs somewhere and keeps reporting, and is ignored
    assert not committer.accept(Report(run, 1, "node-a", {store.PROGRESS: b"[1, 2]", "checkpoint.pt": b"epoch 2"}))
    assert committer.begin(run) == 2
    stale = Report(run, 1, "node-a", {"checkpoint.pt": b"epoch 3"}, Attempt("finished", "", _record(run), "node-a"))
    assert not committer.accept(stale)
    after = _snapshot(runs / run)
    assert {k: v for k, v in after.items() if k != ATTEMPTS} == {k: v for k, v in before.items() if k != ATTEMPTS}
    assert (runs / run / "checkpoint.pt").read_bytes() == b"epoch 1" and not (runs / run / store.RECORD).exists()
    assert committer.dropped == 2
    # the current attempt's reports and its end are written, the record last, with every attempt
    assert committer.accept(Report(run, 2, "node-b", {"checkpoint.pt": b"epoch 2"}))
    final = Report(run, 2, "node-b", {store.PROGRESS: b"[1, 2]"}, Attempt("failed", "why", _record(run), "node-b"))
    assert committer.accept(final)
    record = store.read_record(runs / run)
    times = [{k: a[k] for k in ("started_at", "ended_at")} for a in record["attempts"]]
    driver = host_name()
    assert record["attempts"] == [
        {"attempt": 1, "host": "node-a", "driver": driver, **times[0], "ended": "lost: NodeDiedError: the node died"},
        {"attempt": 2, "host": "node-b", "driver": driver, **times[1], "ended": "failed: why"}]
    assert committer.final(final).record == record
    assert not committer.accept(Report(run, 2, "node-b", {"checkpoint.pt": b"late"}))  # ended: nothing after


def test_attempts_continue_across_drivers_and_an_unended_one_is_abandoned(tmp_path):
    runs = tmp_path / "runs"
    Committer(runs).begin("cell")  # its driver was killed: attempt 1 never ended
    assert Committer(runs).begin("cell") == 2
    attempts = Committer(runs).attempts("cell")
    assert [(a["attempt"], a["ended"]) for a in attempts] == [(1, "abandoned: its driver stopped"), (2, None)]


def test_an_attempt_cannot_write_outside_the_store_files(tmp_path):
    runs = tmp_path / "runs"
    committer = Committer(runs)
    committer.begin("cell")
    files = {store.STUDY: b"{}", store.SPEC: b"{}", store.RECORD: b"{}", ".lease": b"x", "../other/x": b"x",
             str(store.EVENTS): b"events"}
    assert committer.accept(Report("cell", 1, "node-a", files))
    written = {str(p.relative_to(runs)) for p in runs.rglob("*") if p.is_file()}
    assert written == {f"cell/{ATTEMPTS}", f"cell/{store.EVENTS}"}


def test_seed_is_what_a_resumed_attempt_needs(tmp_path):
    run_dir = tmp_path / "runs" / "cell"
    run_dir.mkdir(parents=True)
    for name in ("checkpoint.pt", store.PROGRESS, store.LOG, store.RECORD, store.SPEC):
        (run_dir / name).write_bytes(name.encode())
    assert set(Committer(tmp_path / "runs").seed("cell")) == {"checkpoint.pt", store.PROGRESS, store.LOG}


def test_the_record_schema_takes_attempts_and_refuses_malformed_ones():
    record = _record("cell")
    assert store.record_problem({**record, "attempts": [{"attempt": 1, "host": "h", "ended": "finished"}]}) is None
    assert "attempts" in store.record_problem({**record, "attempts": "two"})
    assert "attempts" in store.record_problem({**record, "attempts": [{"host": "h"}]})


def _epoch(number: int) -> dict:
    return {"epoch": number, **{k: 0.5 for k in METRIC_KEYS}, "train_loss": 1.0, "train_acc": 0.5, "wall_s": 2.0,
            "step_ms": [10.0, 11.0], "warmup_steps": 1}


def test_a_lost_attempt_leaves_a_failed_record_and_the_next_attempt_drops_it(tmp_path):
    """A cell whose attempt died with its node, retries used up: a 'failed' record through the driver,
    as a local child that died gets one (the epochs stored, the attempts); not complete, so a re-run
    resumes the cell, and the next attempt's begin drops the record."""
    runs, run = tmp_path / "runs", "cell"
    job = CellJob(str(runs / run), build_spec({}).to_dict(), {"study": "s", "profile": "smoke"}, str(tmp_path))
    committer = Committer(runs)
    committer.begin(run)
    environment = {"host": "node-a", "device": "cpu"}
    assert committer.accept(Report(run, 1, "node-a", {
        store.PROGRESS: json.dumps([_epoch(0)]).encode(), store.ENVIRONMENT: json.dumps(environment).encode()}))
    done = committer.lost(job, 1, "lost: NodeDiedError: the node died")
    record = store.read_record(runs / run)
    assert done == Attempt("failed", "lost: NodeDiedError: the node died", record, "node-a")
    assert record["status"] == "failed" and record["status"] not in store.COMPLETE
    assert record["reason"] == "lost: NodeDiedError: the node died" and record["epochs_done"] == 1
    assert record["environment"] == environment and record["history"] == [_epoch(0)]
    (attempt,) = record["attempts"]
    assert attempt["ended"] == "lost: NodeDiedError: the node died" and attempt["host"] == "node-a"
    assert datetime.fromisoformat(attempt["ended_at"]) >= datetime.fromisoformat(attempt["started_at"])
    assert store.read_membership(runs / run) == {"study": "s", "profile": "smoke"}
    assert committer.lost(job, 1, "lost: again") is None  # ended already: nothing written
    assert committer.begin(run) == 2 and store.read_record(runs / run) is None
