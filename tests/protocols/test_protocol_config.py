"""--protocol and protocol options on the command line and in the INI file,
user protocols, the malformed-traffic policy and the CI gate."""
import os
import socket
import subprocess
import sys

import pytest

import support
from conftest import HERE

pytestmark = pytest.mark.timeout(60)

EXAMPLES = os.path.join(support.ROOT, 'examples')


def error_of(*args, **kwargs):
    done = support.run_cli('--distant', '127.0.0.1:9', '--local',
                           '127.0.0.1:0', *args, **kwargs)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('vaurien: error: '), \
        done.stderr
    return lines[0][len('vaurien: error: '):]


def test_mistakes_are_one_line_and_exit_2(tmp_path):
    assert error_of('--protocol', 'gopher') == (
        "unknown protocol 'gopher' (known: http, memcache, mysql, redis, "
        "smtp, tcp; or a dotted path like pkg.module.Class)")
    assert error_of('--protocol', 'http', '--protocols.http.nope', '1') == (
        "protocol http: unknown option 'nope' (valid options: "
        "overwrite_host_header)")
    assert 'expects a boolean' in error_of(
        '--protocol', 'http', '--protocols.http.overwrite_host_header',
        'maybe')
    assert error_of('--protocols.http.overwrite_host_header', '1') == (
        "--protocols.http.* gives options to protocol 'http', but the "
        "protocol in use is 'tcp' (--protocol)")
    assert 'no module named' in error_of('--protocol', 'nosuch.Module')
    assert 'is not a subclass of vaurien.protocols.BaseProtocol' in \
        error_of('--protocol', 'os.path.join')
    assert error_of('--protocol', '') .startswith('--protocol expects')
    ini = tmp_path / 'v.ini'
    ini.write_text('[vaurien]\nprotocol = redis\n\n[protocol:mine]\n'
                   'callable = nosuch.Thing\n')
    # A declared but unused protocol is not loaded.
    done = support.run_cli('--config', str(ini), '--help')
    assert done.returncode == 0
    ini.write_text('[vaurien]\nprotocol = mine\n\n[protocol:mine]\n'
                   'callable = nosuch.Thing\n')
    assert "no module named 'nosuch'" in error_of('--config', str(ini))
    ini.write_text('[protocol:http]\ncallable = line_protocol.Lines\n')
    assert 'two protocols named' in error_of(
        '--config', str(ini), '--protocol', 'http', extra_paths=[EXAMPLES])


def test_help_lists_protocols_and_their_options():
    done = support.run_cli('--help')
    assert done.returncode == 0
    assert '--protocol NAME' in done.stdout
    assert '--protocols.http.overwrite_host_header' in done.stdout


def lines_roundtrip(proxy, lines):
    with socket.create_connection(proxy.address, timeout=10) as sock:
        sock.sendall(b''.join(lines))
        sock.shutdown(socket.SHUT_WR)
        return support.recv_all(sock)


def test_a_user_protocol_by_dotted_path_and_by_section(vaurien_inproc,
                                                       echo_server, tmp_path,
                                                       recorder):
    args, records = recorder
    proxy = vaurien_inproc('--protocol', 'line_protocol.Lines', *args,
                           backend=echo_server.address,
                           extra_paths=[EXAMPLES, HERE])
    lines = [b'one\n', b'two\n', b'three\n']
    assert lines_roundtrip(proxy, lines) == b''.join(lines)
    assert [d for k, d in records() if k == 'up'] == lines
    ini = tmp_path / 'lines.ini'
    ini.write_text('[vaurien]\nprotocol = lines\nbehavior = 100:error\n\n'
                   '[protocol:lines]\ncallable = line_protocol.Lines\n'
                   'error_text = BUSY\n')
    failing = vaurien_inproc('--config', str(ini),
                             backend=echo_server.address,
                             extra_paths=[EXAMPLES])
    assert lines_roundtrip(failing, lines) == b'ERR BUSY\n' * 3


def test_malformed_traffic_is_relayed_raw_with_one_log_line(vaurien_inproc,
                                                            echo_server):
    proxy = vaurien_inproc('--protocol', 'http', '--behavior', '50:delay',
                           '--handlers.delay.sleep', '0.01',
                           backend=echo_server.address)
    garbage = b'\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03' + \
        os.urandom(50000)
    for _ in range(2):
        with socket.create_connection(proxy.address, timeout=10) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            assert support.recv_all(sock) == garbage
    # A request is framed; the echo of it is no HTTP response, so that
    # direction (and the connection) goes on raw too.
    with socket.create_connection(proxy.address, timeout=10) as sock:
        request = b'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        assert support.recv_all(sock) == request
    log = support.wait_until(
        lambda: proxy.log().count('raw bytes') >= 3 and proxy.log(),
        what='the warnings')
    warnings = [line for line in log.splitlines() if 'raw bytes' in line]
    assert len(warnings) == 3, log            # one per bad connection
    assert 'protocol http: connection 1: unexpected client->backend' \
        in warnings[0]
    assert 'connection 3: unexpected backend->client' in warnings[2]
    assert 'Traceback' not in log


@pytest.mark.timeout(120)
def test_ci_turns_a_skipped_protocol_test_into_a_failure():
    target = os.path.join(HERE, 'test_protocol_redis.py') + \
        '::test_resp3_and_inline'
    env = support.env_with_root()
    env['VAURIEN_TESTS_MISSING'] = 'redis-server'
    argv = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
            target]
    env['CI'] = 'false'
    local = subprocess.run(argv + ['-n', '0'], env=env, capture_output=True,
                           text=True, timeout=100, cwd=support.ROOT)
    assert local.returncode == 0 and '1 skipped' in local.stdout, \
        local.stdout
    env['CI'] = 'true'
    # In an xdist worker, as tox.ini runs the tests: the failure must reach
    # the controller through xdist's report transport.
    ci = subprocess.run(argv + ['-n', '1'], env=env, capture_output=True,
                        text=True, timeout=100, cwd=support.ROOT)
    assert ci.returncode == 1, ci.stdout
    assert 'skipped under CI' in ci.stdout


def test_a_protocol_from_an_installed_package(vaurien, echo_server,
                                              tmp_path):
    dist = tmp_path / 'chaos_lines-1.0.dist-info'
    dist.mkdir()
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: chaos-lines'
                                   '\nVersion: 1.0\n')
    (dist / 'entry_points.txt').write_text(
        '[vaurien.protocols]\nlines = line_protocol:Lines\n')
    proxy = vaurien('--protocol', 'lines', '--behavior', '100:error',
                    backend=echo_server.address,
                    extra_paths=[str(tmp_path), EXAMPLES])
    assert lines_roundtrip(proxy, [b'a\n', b'b\n']) == \
        b'ERR server unavailable\n' * 2
