"""docs/toxiproxy.rst stays true: its curl session is run, in order,
against a real ``vaurien-toxiproxy`` (port 8474 of the docs mapped to the
real one) and every answer is compared with the one printed (``...``
matches anything)."""
import doctest
import os
import re
import shlex
import shutil
import subprocess

import pytest

import support
from named_support import InProcessNamedVaurien
from test_docs_control import console_examples
from toxiproxy_support import ToxiproxyServer

PAGE = os.path.join(support.ROOT, 'docs', 'toxiproxy.rst')
_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.timeout(120)
def test_curl_session():
    assert shutil.which('curl'), 'curl is in .ci/debian-packages.txt'
    examples = console_examples(PAGE)
    assert len(examples) >= 10
    server = ToxiproxyServer()
    port = server.url.rpartition(':')[2]
    try:
        for number, command, expected in examples:
            argv = shlex.split(command.replace('8474', port))
            assert argv[0] == 'curl', (number, command)
            done = subprocess.run(argv, capture_output=True, text=True,
                                  timeout=30)
            got = done.stdout.strip()
            assert _CHECKER.check_output(expected + '\n', got + '\n',
                                         _FLAGS), (
                'docs/toxiproxy.rst line %d: %s\nexpected: %s\ngot: %s'
                % (number, command, expected, got))
    finally:
        server.stop()


def test_ini_example_starts(tmp_path):
    """The [proxy:NAME] example of docs/toxiproxy.rst starts as it is
    (its ports mapped to free ones, its backends to an echo server) and
    serves its three proxies with their toxics."""
    with open(PAGE, encoding='utf-8') as fh:
        text = fh.read()
    block = text.split('.. code-block:: ini\n\n', 1)[1].split('\n\n\n')[0]
    block = block.split('\nHow the two APIs')[0]
    ini = '\n'.join(line[4:] for line in block.splitlines())
    echo = support.TCPServer(support.echo)
    ini = re.sub(r'(?m)^local = .*$', 'local = 127.0.0.1:0', ini)
    ini = re.sub(r'(?m)^distant = .*$', 'distant = %s:%d' % echo.address,
                 ini)
    ini = ini.replace('http = true\n', '')
    proc = InProcessNamedVaurien(ini, names=('cache', 'api'))
    try:
        proxies = proc.request('GET', '/proxies').json()
        assert sorted(proxies) == ['api', 'cache', 'db']
        assert [t['type'] for t in proxies['cache']['toxics']] == [
            'latency', 'bandwidth']
        assert proxies['db']['enabled'] is False
        assert proc.request('GET', '/proxies/api/behavior').json()[
            'behavior'] == '10:delay'
    finally:
        proc.stop()
        echo.close()
