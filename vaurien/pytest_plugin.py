"""The pytest plugin of Vaurien: the ``vaurien_proxy`` fixture.

Registered through the ``pytest11`` entry point, so installing Vaurien is
enough::

    def test_survives_blackout(vaurien_proxy):
        proxy = vaurien_proxy(backend=("127.0.0.1", 5432))
        connect(proxy.host, proxy.port)          # through the proxy
        with proxy.with_handler("blackout"):
            ...                                  # every request fails

Each call starts a real ``vaurien`` process on free ports (chosen by the
kernel and read back from its log), with its control API on, and returns a
:class:`RunningProxy` once both listen. Every proxy a test started is
stopped when the test ends, also when it fails; a failing test's report
shows the proxies' logs.
"""
import pytest

from vaurien.config import format_hostport
from vaurien.testing import ProxyProcess, ProxyStartError

__all__ = ['RunningProxy', 'vaurien_proxy']

_PROXY_LINE = r'proxying (\S+):(\d+) -> '
_CONTROL_LINE = r'control API on http://(\S+):(\d+)'


class RunningProxy:
    """A proxy started by the ``vaurien_proxy`` fixture.

    ``host`` and ``port``: where to connect instead of the backend;
    ``address``: both as a tuple; ``client``: a :class:`vaurien.Client` of
    its control API; ``pid``; :meth:`log` gives what it logged so far.
    """

    def __init__(self, process, host, port, http_port, token=None):
        from vaurien.client import Client
        self.process = process
        self.pid = process.pid
        self.host = host
        self.port = port
        self.address = (host, port)
        self.http_port = http_port
        self.client = Client(host, http_port, token=token)

    def with_handler(self, name, **options):
        """Context manager: handler *name* inside the block, then back."""
        return self.client.with_handler(name, **options)

    def with_behavior(self, behavior, **options):
        """Context manager: *behavior* (a name or a mix) inside the block."""
        return self.client.with_behavior(behavior, **options)

    def set_handler(self, name, **options):
        """Switch to handler *name* until told otherwise."""
        self.client.set_handler(name, **options)

    def down(self):
        """Context manager: the service is down (connection refused)."""
        return self.client.down()

    def log(self):
        """What the proxy logged so far."""
        return self.process.output()

    def stop(self):
        """Stop the proxy now (the fixture does it at the end anyway)."""
        return self.process.stop()

    def __repr__(self):
        return '<RunningProxy %s:%d pid %d>' % (self.host, self.port,
                                                 self.pid)


def _backend(backend):
    if isinstance(backend, str):
        return backend
    return format_hostport(backend)


_STASH = pytest.StashKey[list]()


@pytest.fixture
def vaurien_proxy(request):
    """Factory fixture: ``vaurien_proxy(backend=(host, port), ...)``.

    Keywords: ``behavior`` (default ``"100:dummy"``), ``options`` (extra
    ``vaurien`` arguments, or ``{handler: {option: value}}``), ``protocol``,
    ``token`` (for the control API), ``timeout`` (seconds to wait for the
    start, default 30). Returns a :class:`RunningProxy`.
    """
    started = request.node.stash.setdefault(_STASH, [])

    def start(backend, behavior='100:dummy', options=None, protocol='tcp',
              token=None, timeout=30.0):
        from vaurien.testing import proxy_args
        args = proxy_args('127.0.0.1', 0, '127.0.0.1', 1, protocol=protocol,
                          http=True, http_host='127.0.0.1', http_port=0,
                          options=options, log_level='info', log_output='-',
                          behavior=behavior, http_token=token)
        args[args.index('--distant') + 1] = _backend(backend)
        process = ProxyProcess(args, echo=False)
        started.append(process)

        def ready():
            return (process.search(_PROXY_LINE) is not None
                    and process.search(_CONTROL_LINE) is not None)
        failure = None
        try:
            process.wait_ready(ready, timeout)
        except ProxyStartError as exc:
            failure = str(exc)
        if failure is not None:   # outside "except": no chained traceback
            pytest.fail('vaurien_proxy: %s' % failure, pytrace=False)
        port = int(process.search(_PROXY_LINE).group(2))
        http_port = int(process.search(_CONTROL_LINE).group(2))
        return RunningProxy(process, '127.0.0.1', port, http_port, token)

    yield start
    for process in started:
        process.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the proxies' logs to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when == 'call':
        for process in item.stash.get(_STASH, []):
            report.sections.append(('vaurien proxy pid %d' % process.pid,
                                    process.output()))
