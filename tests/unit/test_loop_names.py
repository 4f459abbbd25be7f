"""Which delivery-loop names a starting process may take (pure, the liveness probe injected)."""

from agents.sender.loop_names import Holder, Me, is_free

ME = Me(host="h1", pid=100, instance="new")
NOW = 1000.0
EXPIRY = 10.0


def holder(host: str = "h1", pid: int = 7, instance: str = "old", at: float = NOW - 1) -> Holder:
    return Holder(host=host, pid=pid, instance=instance, heartbeat_at=at)


def test_a_name_nobody_holds_is_free():
    assert is_free(None, ME, NOW, EXPIRY)


def test_a_live_process_on_this_host_keeps_its_name():
    assert not is_free(holder(), ME, NOW, EXPIRY, alive=lambda pid: True)


def test_a_dead_process_on_this_host_gives_its_name_back_at_once():
    assert is_free(holder(), ME, NOW, EXPIRY, alive=lambda pid: False)


def test_a_restarted_container_with_the_same_pid_takes_its_name_back():
    assert is_free(holder(pid=100), ME, NOW, EXPIRY, alive=lambda pid: True)


def test_another_host_keeps_its_name_until_its_heartbeat_is_old():
    assert not is_free(holder(host="h2"), ME, NOW, EXPIRY, alive=lambda pid: False)
    assert is_free(holder(host="h2", at=NOW - EXPIRY - 1), ME, NOW, EXPIRY, alive=lambda pid: True)


def test_our_own_instance_may_take_its_name_again():
    assert is_free(holder(instance="new", host="h2"), ME, NOW, EXPIRY, alive=lambda pid: True)
