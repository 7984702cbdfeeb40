"""Waiting in a test for something another process does, written once: poll, give up with a message."""
import time


def wait_for(condition, what="the condition", timeout=120, every=0.05):
    """Poll `condition()` until it returns something true, and return that; AssertionError naming `what`
    after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(every)
