"""The ``vaurien-toxiproxy`` command (vaurien/toxiproxy_server.py):
toxiproxy-server's flags, the config file, the graceful stop."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest
import requests

import support
from toxiproxy_support import (ToxiproxyServer, address, connect,
                               exchange)


def run(*args):
    return subprocess.run([sys.executable, '-m', 'vaurien.toxiproxy_server']
                          + list(args), capture_output=True, text=True,
                          timeout=30, env=support.env_with_root())


def test_version_flag_with_one_or_two_dashes():
    for flag in ('-version', '--version'):
        done = run(flag)
        assert done.returncode == 0
        assert done.stdout.startswith('toxiproxy-server version 2.12.0')


def test_mistakes_are_one_line_and_status_2(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('[{"name": "x"}]')
    for args, words in [(['-port', 'abc'], '-port expects an integer'),
                        (['-seed', 'x'], '-seed expects an integer'),
                        (['-nope'], 'unrecognized arguments'),
                        (['-port', '0', '-config', str(tmp_path / 'none')],
                         'cannot read'),
                        (['-port', '0', '-config', str(bad)],
                         'missing required field: upstream at proxy 1')]:
        done = run(*args)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            'vaurien-toxiproxy: error: '), done.stderr
        assert words in lines[0]


def test_config_file_with_toxics(tmp_path):
    echo = support.TCPServer(support.echo)
    config = tmp_path / 'toxiproxy.json'
    config.write_text(json.dumps([
        {'name': 'slow', 'listen': '127.0.0.1:0',
         'upstream': '%s:%d' % echo.address,
         'toxics': [{'type': 'latency', 'attributes': {'latency': 300}}]},
        {'name': 'off', 'listen': '127.0.0.1:0',
         'upstream': '%s:%d' % echo.address, 'enabled': False}]))
    server = ToxiproxyServer('-config', config)
    try:
        proxies = server.request('GET', '/proxies').json()
        assert proxies['off']['enabled'] is False
        with connect(address(proxies['slow']['listen'])) as sock:
            got, took = exchange(sock, b'x')
        assert got == b'x' and took >= 0.3
    finally:
        server.stop()
        echo.close()


def test_sigterm_drains_then_resets_as_vaurien_does():
    """SIGTERM: no new connections; an answer held in a latency toxic is
    still delivered within --grace; an idle connection is reset (RST)
    after it; the log counts both."""
    echo = support.TCPServer(support.echo)
    server = ToxiproxyServer('--grace', '1')
    try:
        addr = server.create('e', echo.address)
        idle = connect(addr)
        assert exchange(idle, b'i')[0] == b'i'
        busy = connect(addr)
        assert exchange(busy, b'b')[0] == b'b'
        # From the next read on, every answer is held 400 ms.
        server.add_toxic('e', 'latency', latency=400)
        busy.sendall(b'late')
        server.proc.send_signal(signal.SIGTERM)
        support.wait_until(lambda: not support.port_open(addr[1]),
                           what='the listener closed at once')
        got, took = exchange(busy, b'', size=4)
        assert got == b'late' and took >= 0.2
        busy.close()
        idle.settimeout(10)
        with pytest.raises(ConnectionResetError):
            idle.recv(10)
        assert server.proc.wait(10) == 0
        output = server.output()
        # Drained: the busy one (and any connection that was closing, such
        # as a port check's); cut: the idle one.
        counts = re.search(r'stopped: (\d+) connections drained, (\d+) cut '
                           r'\(reset\)', output)
        assert counts, output
        assert int(counts.group(1)) >= 1 and int(counts.group(2)) == 1, \
            output
    finally:
        server.stop()
        echo.close()


def test_grace_mistake_is_one_line_and_status_2():
    done = run('-port', '0', '--grace', 'soon')
    assert done.returncode == 2
    assert done.stderr == ("vaurien-toxiproxy: error: --grace expects a "
                           "number of seconds (0 or more), got 'soon'\n")


def test_console_script_is_declared():
    with open(os.path.join(support.ROOT, 'setup.py')) as fh:
        assert "'vaurien-toxiproxy = vaurien.toxiproxy_server:main'" \
            in fh.read()


def test_log_level_from_the_environment_as_toxiproxy_reads_it():
    """LOG_LEVEL=debug shows the API's access log; the default (info) not."""
    for level, shown in (('debug', True), ('', False)):
        env = support.env_with_root()
        env['LOG_LEVEL'] = level
        proc = subprocess.Popen(
            [sys.executable, '-m', 'vaurien.toxiproxy_server', '-host',
             '127.0.0.1', '-port', '0'], stderr=subprocess.PIPE, env=env,
            text=True)
        try:
            first = proc.stderr.readline()
            url = first.split(' on ', 1)[1].split(',')[0]
            assert requests.get(url + '/version', timeout=10).ok
        finally:
            proc.terminate()
            rest = proc.communicate(timeout=10)[1]
        assert ('[DEBUG]' in rest and 'GET /version' in rest) is shown, rest
