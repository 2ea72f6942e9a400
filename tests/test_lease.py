"""Leases (bench/store/lease.py), the cross-host claim of a Ray driver: exclusive while fresh, taken
over only once stale (or at once from a dead process of this host), the takeover atomic among
contenders, the old holder told it lost the lease, and a bad timeout refused in one line."""
from __future__ import annotations

import json
import threading
import time

import pytest

from bench.errors import UserError
from bench.store import Busy
from bench.store.lease import LEASE, acquire, host_name, lease_timeout, read_lease


def _foreign(run_dir, age_s: float, host: str = "elsewhere", pid: int = 12345) -> dict:
    info = {"host": host, "pid": pid, "token": f"foreign-{age_s}", "attempt": 1, "heartbeat": time.time() - age_s}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LEASE).write_text(json.dumps(info))
    return info


def test_a_lease_names_its_holder_and_excludes_others(tmp_path, monkeypatch):
    monkeypatch.setenv("FDABNN_HOST", "driver-a")
    lease = acquire(tmp_path / "run", attempt=3, timeout=60)
    try:
        info = read_lease(tmp_path / "run")
        assert info["host"] == "driver-a" == host_name() and info["attempt"] == 3 and info["token"] == lease.token
        with pytest.raises(Busy, match="on host driver-a"):
            acquire(tmp_path / "run", timeout=60)
    finally:
        lease.release()
    assert not (tmp_path / "run" / LEASE).exists()
    acquire(tmp_path / "run", timeout=60).release()  # free again


def test_the_holder_beats_and_a_fresh_foreign_lease_is_respected(tmp_path):
    lease = acquire(tmp_path / "run", timeout=0.6)
    first = read_lease(tmp_path / "run")["heartbeat"]
    time.sleep(0.5)
    assert read_lease(tmp_path / "run")["heartbeat"] > first and not lease.lost
    lease.release()
    _foreign(tmp_path / "other", age_s=1.0)  # 1 s old, timeout 60 s: a live driver elsewhere
    with pytest.raises(Busy, match="on host elsewhere"):
        acquire(tmp_path / "other", timeout=60)


def test_a_stale_lease_is_taken_over_and_its_old_holder_learns_it(tmp_path):
    old = acquire(tmp_path / "run", timeout=60)
    old._stop.set()  # a holder that stopped beating (a paused or partitioned host)
    old._thread.join()
    info = read_lease(tmp_path / "run")
    (tmp_path / "run" / LEASE).write_text(json.dumps({**info, "host": "elsewhere", "heartbeat": time.time() - 61}))
    new = acquire(tmp_path / "run", timeout=60)
    try:
        assert read_lease(tmp_path / "run")["token"] == new.token != old.token
        old._refresh()  # its next beat
        assert old.lost and read_lease(tmp_path / "run")["token"] == new.token  # never written over
        old.release()
        assert read_lease(tmp_path / "run")["token"] == new.token  # a lost lease's release removes nothing
        assert not list((tmp_path / "run").glob(f"{LEASE}.*"))  # no takeover lock left behind
    finally:
        new.release()


def test_a_dead_process_of_this_host_frees_its_lease_at_once(tmp_path):
    _foreign(tmp_path / "run", age_s=0.0, host=host_name(), pid=2 ** 22 + 1)  # no such pid
    acquire(tmp_path / "run", timeout=3600).release()


def test_contenders_for_a_stale_lease_get_it_once(tmp_path):
    _foreign(tmp_path / "run", age_s=100)
    won, busy = [], []
    barrier = threading.Barrier(8)

    def contend():
        barrier.wait()
        try:
            won.append(acquire(tmp_path / "run", timeout=60))
        except Busy:
            busy.append(1)

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(busy) == 7
    assert read_lease(tmp_path / "run")["token"] == won[0].token
    won[0].release()


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_a_bad_lease_timeout_is_refused_in_one_line(monkeypatch, value):
    monkeypatch.setenv("FDABNN_LEASE_TIMEOUT_S", value)
    with pytest.raises(UserError, match="FDABNN_LEASE_TIMEOUT_S.*expected a number of seconds > 0"):
        lease_timeout()
    monkeypatch.setenv("FDABNN_LEASE_TIMEOUT_S", "2.5")
    assert lease_timeout() == 2.5


def test_a_local_attempt_leaves_a_cell_a_ray_driver_holds(tmp_path):
    from bench.cell_attempt import BUSY, CellJob, attempt

    lease = acquire(tmp_path / "run", timeout=60)
    try:
        done = attempt(CellJob(str(tmp_path / "run"), {}, {}, str(tmp_path)))
    finally:
        lease.release()
    assert done.status == BUSY and "a Ray driver on host" in done.reason
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".claim"]  # nothing written
