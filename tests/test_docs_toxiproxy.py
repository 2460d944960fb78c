"""docs/toxiproxy.rst stays true: its curl session is run, in order,
against a real ``vaurien-toxiproxy`` (port 8474 of the docs mapped to the
real one) and every answer is compared with the one printed (``...``
matches anything)."""
import doctest
import os
import shlex
import shutil
import subprocess

import pytest

import support
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
