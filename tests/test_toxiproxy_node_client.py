"""toxiproxy-node-client (npm), Toxiproxy's Node client, drives
``vaurien-toxiproxy`` unchanged (tests/node/toxiproxy_client.js: every
toxic type measured on real traffic, updates, populate, reset, disable and
enable). ``.ci/run`` installs the client into tests/node/node_modules."""
import os
import shutil
import subprocess

import pytest

import support
from toxiproxy_support import Sender, ToxiproxyServer

NODE_DIR = os.path.join(support.ROOT, 'tests', 'node')
CLIENT = os.path.join(NODE_DIR, 'node_modules', 'toxiproxy-node-client')


def _need_client():
    missing = None
    if shutil.which('node') is None:
        missing = 'node is not installed'
    elif not os.path.isdir(CLIENT):
        missing = ('toxiproxy-node-client is not installed: run '
                   '"npm install --prefix tests/node"')
    if missing:
        if os.environ.get('CI'):
            pytest.fail(missing + ' (.ci/run installs it)')
        pytest.skip(missing)


@pytest.mark.timeout(120)
def test_node_client_drives_vaurien_toxiproxy():
    _need_client()
    echo = support.TCPServer(support.echo)
    sender = Sender([b'n' * 50000], hold=True)
    server = ToxiproxyServer()
    try:
        done = subprocess.run(
            ['node', 'toxiproxy_client.js', server.url,
             str(echo.address[1]), str(sender.address[1])],
            cwd=NODE_DIR, capture_output=True, text=True, timeout=100)
        assert done.returncode == 0, (done.stdout + done.stderr +
                                      server.output()[-3000:])
        passed = [line for line in done.stdout.splitlines()
                  if line.startswith('ok ')]
        assert len(passed) == 11, done.stdout
    finally:
        server.stop()
        sender.close()
        echo.close()
