"""The one lease lock used by `run` and by delivery."""

import os
import socket
from datetime import timedelta

from edumail import lease
from edumail.store import Store

TTL = timedelta(minutes=2)


def test_a_free_lease_is_taken_and_a_second_owner_is_told_who_holds_it(tmp_path):
    store = Store(tmp_path / "e.db")
    first, second = lease.Lease(store, "run", TTL), lease.Lease(store, "run", TTL)
    assert first.take() is None
    holder = second.take()
    assert holder is not None and holder["owner"] == first.owner
    assert lease.describe(holder) == f"pid {os.getpid()} on {socket.gethostname()}"
    first.release()
    assert second.take() is None


def test_an_expired_lease_is_taken_over_and_its_old_owner_can_no_longer_renew(tmp_path):
    store = Store(tmp_path / "e.db")
    old = lease.Lease(store, "delivery", timedelta(seconds=-1))  # expired as soon as taken
    assert old.take() is None
    new = lease.Lease(store, "delivery", TTL)
    assert new.take() is None
    assert old.renew() is False and new.renew() is True


def test_a_lease_of_a_dead_local_process_is_taken_over_but_not_one_of_another_host(tmp_path):
    store = Store(tmp_path / "e.db")
    gone = 2**22 + 12345  # above the usual pid range
    far = lease.wall_clock() + timedelta(days=1)
    store.take_lock("run", f"{socket.gethostname()}:{gone}:x", lease.wall_clock(), far)
    store.take_lock("delivery", f"elsewhere:{gone}:x", lease.wall_clock(), far)
    assert lease.Lease(store, "run", TTL).take() is None
    assert lease.Lease(store, "delivery", TTL).take() is not None


def test_a_process_we_may_not_signal_is_alive():
    # PermissionError from os.kill means the process exists under another user: never take its lease.
    assert lease.alive(os.getpid())
    assert not lease.dead(f"{socket.gethostname()}:1:x")  # pid 1 always exists
    assert lease.dead(f"{socket.gethostname()}:{2**22 + 12345}:x")
