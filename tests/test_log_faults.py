"""``--log-faults``: one INFO line per fault applied, none when off."""
import re
import socket

import pytest

import support
from observe_support import finish, talk

pytestmark = pytest.mark.timeout(60)

LINE = re.compile(r'\[INFO\] fault: proxy (\S+), connection (\d+), peer '
                  r'(\S+), (upstream|downstream), handler (\S+): (\S+) '
                  r'\((\d+\.\d{3}) s\)$', re.M)


def test_one_line_per_fault(vaurien_inproc, echo_server):
    proc = vaurien_inproc('--log-faults', '--behavior', '100:delay',
                          '--handlers.delay.sleep', '0.01',
                          backend=echo_server.address)
    with proc.connect() as sock:
        peer = '%s:%d' % sock.getsockname()[:2]
        for message in (b'one', b'two', b'three'):
            assert support.exchange(sock, message) == message
        sock.shutdown(socket.SHUT_WR)
        assert support.recv_all(sock) == b''
    log = finish(proc)
    lines = LINE.findall(log)
    # delay holds what the client sends: three faults, upstream; the
    # answers (picked too, wrong direction) and the ends of stream are not
    # faults.
    assert len(lines) == 3, log
    for address, conn, client, direction, handler, effect, seconds in lines:
        assert address == '%s:%d' % proc.address
        assert (conn, client, direction) == ('1', peer, 'upstream')
        assert (handler, effect) == ('delay', 'delayed')
        assert float(seconds) >= 0.01


def test_a_cut_is_logged_in_protocol_mode(vaurien_inproc, http_server):
    proc = vaurien_inproc('--log-faults', '--protocol', 'http',
                          '--behavior', '100:blackout',
                          backend=http_server.address)
    with proc.connect() as sock:
        sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        assert support.recv_all(sock) == b''
    support.wait_until(lambda: LINE.search(proc.log()), what='the line')
    lines = LINE.findall(finish(proc))
    assert [(d, h, e) for _, _, _, d, h, e, _ in lines] == \
        [('upstream', 'blackout', 'cut')]


def test_off_by_default(vaurien_inproc, echo_server):
    proc = vaurien_inproc('--behavior', '100:delay',
                          '--handlers.delay.sleep', '0',
                          backend=echo_server.address)
    talk(proc.address, [b'one', b'two'])
    log = finish(proc)
    assert 'fault:' not in log
    assert 'proxying' in log        # the log itself is there


def test_from_the_ini_file(vaurien_inproc, echo_server, tmp_path):
    config = tmp_path / 'vaurien.ini'
    config.write_text('[vaurien]\nlog_faults = true\nbehavior = 100:delay\n'
                      '[handler:delay]\nsleep = 0\n')
    proc = vaurien_inproc('--config', str(config), backend=echo_server.address)
    talk(proc.address, [b'one'])
    assert len(LINE.findall(finish(proc))) == 1
