"""vaurien.poll: the one polling loop of start_proxy, the test suite and
the benchmarks."""
import socket
import time

import pytest

from vaurien.poll import port_open, wait_for

import support


def test_returns_the_first_true_value():
    calls = []

    def predicate():
        calls.append(1)
        return len(calls) >= 3 and 'ready'
    assert wait_for(predicate, 5, interval=0.001) == 'ready'
    assert len(calls) == 3


def test_times_out_with_the_error_asked_for():
    calls = []
    start = time.monotonic()
    with pytest.raises(AssertionError,
                       match=r'timed out after 0.2s waiting for the moon'):
        wait_for(lambda: calls.append(1), 0.2, 'the moon', 0.01,
                 AssertionError)
    assert time.monotonic() - start >= 0.2
    assert len(calls) >= 2          # and it did poll meanwhile
    with pytest.raises(TimeoutError):
        wait_for(lambda: False, 0, 'nothing')


def test_an_exception_of_the_predicate_ends_the_wait():
    def predicate():
        raise ValueError('exited')
    start = time.monotonic()
    with pytest.raises(ValueError, match='exited'):
        wait_for(predicate, 10)
    assert time.monotonic() - start < 5


def test_port_open():
    with socket.socket() as listener:
        listener.bind((support.HOST, 0))
        listener.listen(1)
        assert port_open(support.HOST, listener.getsockname()[1])
    with support.reserved_port() as port:
        assert not port_open(support.HOST, port)
