"""Run a real ``vaurien`` from Python tests: ``start_proxy`` / ``stop_proxy``.

Compatible with the functions of the original Vaurien::

    from vaurien import Client, start_proxy, stop_proxy

    pid = start_proxy(proxy_port=8000, backend_port=8888)
    try:
        client = Client()                  # http://localhost:8080
        with client.with_handler('blackout'):
            ...                            # requests through :8000 fail
    finally:
        stop_proxy(pid)

The proxy runs in a subprocess (``python -m vaurien``, with the same
interpreter). ``start_proxy`` returns once it is ready, polling for at most
``warmup`` seconds, and raises :class:`ProxyStartError` with the proxy's
error and the tail of its log when it could not start. The proxy's log
(``log_output='-'``, the default) is captured, not mixed into the caller's
standard error: :func:`proxy_log` reads it; or give ``log_output`` a file
path. For pytest, the ``vaurien_proxy`` fixture
(:mod:`vaurien.pytest_plugin`) does all of this with free ports.
"""
import atexit
import collections
import os
import re
import signal
import subprocess
import sys
import threading

from vaurien.config import format_hostport
from vaurien.poll import port_open, wait_for

__all__ = ['start_proxy', 'stop_proxy', 'proxy_log', 'ProxyStartError',
           'ProxyProcess']

# Lines of the proxy's output kept for error messages and reports.
_KEPT_LINES = 2000
# Lines of the log a start error quotes.
_TAIL_LINES = 20
# Stopped proxies whose log proxy_log() can still read.
_KEPT_STOPPED = 16
_POLL = 0.02   # seconds between readiness checks
#: Seconds a proxy still starting after ``warmup`` is given before
#: ``start_proxy`` gives up.
STARTING_GRACE = 30.0


class ProxyStartError(ValueError):
    """The proxy could not start; the message has its own error output.

    A ValueError, as the original ``start_proxy`` raised.
    """


class ProxyProcess:
    """One ``python -m vaurien ARGS`` subprocess and its output.

    The proxy's standard error (its log, with ``--log-output -``, and its
    error messages) is read by a thread: kept (the last lines) in
    :meth:`output`, and also copied to this process's stderr when *echo*.
    *log_path* is where the proxy writes its log when not to standard
    error (quoted by :meth:`tail` too).
    """

    def __init__(self, args, echo=False, env=None, cwd=None, log_path=None):
        self.argv = [sys.executable, '-m', 'vaurien'] + [str(a) for a in args]
        self.echo = echo
        self.log_path = log_path
        self._lines = collections.deque(maxlen=_KEPT_LINES)
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=_child_env(env), cwd=cwd)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name='vaurien-%d-stderr' % self.pid)
        self._reader.start()

    def _read(self):
        for raw in iter(self.proc.stderr.readline, b''):
            line = raw.decode('utf-8', 'replace')
            with self._lock:
                self._lines.append(line)
            if self.echo:
                try:
                    sys.stderr.write(line)
                    sys.stderr.flush()
                except Exception:   # a closed or replaced stderr: keep reading
                    pass

    def output(self):
        """What the proxy wrote on its standard error (the last lines)."""
        with self._lock:
            return ''.join(self._lines)

    def tail(self, count=_TAIL_LINES):
        """The last *count* lines of the proxy's log (its file, when it
        writes one) followed by those of its standard error;
        ``'(no output)'`` when there are none."""
        lines = []
        if self.log_path not in (None, '-', '', os.devnull):
            try:
                with open(self.log_path, encoding='utf-8',
                          errors='replace') as fh:
                    lines = [line.rstrip('\n') for line in
                             collections.deque(fh, maxlen=count)]
            except OSError:
                pass
        lines += self.output().splitlines()[-count:]
        return '\n'.join(lines[-count:]).strip() or '(no output)'

    def search(self, pattern):
        """The first match of *pattern* in the output so far, or None."""
        return re.search(pattern, self.output())

    def running(self):
        """True while the process has not exited."""
        return self.proc.poll() is None

    def wait_ready(self, ready, timeout):
        """Poll *ready()* until true, at most *timeout* seconds.

        Raises ProxyStartError (with the end of its log) when the process
        exits first or is not ready in time; it is stopped then.
        """
        def check():
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise ProxyStartError(
                    'vaurien exited with status %s at start-up: %s'
                    % (self.proc.returncode, self.tail()))
            return ready()
        try:
            wait_for(check, timeout, 'vaurien to be ready', _POLL)
        except TimeoutError:
            self.stop()
            raise ProxyStartError(
                'vaurien was not ready within %gs (warmup); the end of '
                'its log: %s' % (timeout, self.tail())) from None

    def stop(self, timeout=10.0):
        """SIGTERM, wait (SIGKILL after *timeout* seconds); the exit status."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        if _STARTED.pop(self.pid, None) is not None:
            _STOPPED[self.pid] = self
            while len(_STOPPED) > _KEPT_STOPPED:
                del _STOPPED[next(iter(_STOPPED))]
        return self.proc.returncode


def _child_env(extra):
    """The environment of the child: ours, with this vaurien importable."""
    env = dict(os.environ)
    if extra:
        env.update(extra)
    # When vaurien is imported from a source tree (not installed), the child
    # must find the same one. Never put site-packages itself in front of the
    # standard library.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not re.search(r'(site|dist)-packages', here):
        paths = env.get('PYTHONPATH', '').split(os.pathsep)
        if here not in paths:
            env['PYTHONPATH'] = os.pathsep.join(
                [here] + [p for p in paths if p])
    return env


_STARTED = {}
_STOPPED = {}     # the last stopped ones, for proxy_log(), oldest first


@atexit.register
def _stop_all():
    # A test run that forgot stop_proxy must not leave proxies behind.
    for process in list(_STARTED.values()):
        try:
            process.stop(timeout=2)
        except Exception:
            pass


def proxy_args(proxy_host='localhost', proxy_port=8000,
               backend_host='localhost', backend_port=8888, protocol='tcp',
               http=True, http_host='localhost', http_port=8080, options=None,
               log_level='info', log_output='-', behavior=None,
               http_token=None):
    """The ``vaurien`` command-line arguments for these settings.

    *options* is a list of extra arguments (as in the original), or a dict
    ``{handler name: {option: value}}``. *behavior* is a string
    (``'20:delay'``) or a list of ``(percent, name)`` pairs.
    """
    args = ['--local', format_hostport((proxy_host, proxy_port)),
            '--distant', format_hostport((backend_host, backend_port)),
            '--log-level', log_level, '--log-output', log_output]
    if protocol and protocol != 'tcp':
        args += ['--protocol', protocol]
    if behavior is not None:
        if not isinstance(behavior, str):
            behavior = ','.join('%s:%s' % tuple(pair) for pair in behavior)
        args += ['--behavior', behavior]
    if http:
        args += ['--http', 'yes', '--http-host', http_host,
                 '--http-port', str(http_port)]
        if http_token:
            args += ['--http-token', http_token]
    if isinstance(options, dict):
        for name, values in options.items():
            for option, value in values.items():
                if isinstance(value, bool):
                    value = 'true' if value else 'false'
                args += ['--handlers.%s.%s' % (name, option), str(value)]
    elif options is not None:
        args += [str(option) for option in options]
    return args


def _size(path):
    """The size of the file at *path* (0 when there is none yet)."""
    try:
        return os.path.getsize(path)
    except (OSError, TypeError, ValueError):
        return 0


def _log_has(path, offset, pattern):
    """True when *pattern* is in the log file at *path* past *offset*
    (what an earlier run appended before is not read)."""
    try:
        with open(path, 'rb') as fh:
            fh.seek(offset)
            text = fh.read().decode('utf-8', 'replace')
    except OSError:
        return False
    return re.search(pattern, text) is not None


def start_proxy(proxy_host='localhost', proxy_port=8000,
                backend_host='localhost', backend_port=8888, protocol='tcp',
                http=True, warmup=2, http_host='localhost', http_port=8080,
                options=None, log_level='info', log_output='-',
                behavior=None, http_token=None, host=None, port=None):
    """Start ``vaurien`` in a subprocess; its pid, once it is ready.

    *host* and *port* are the 2012 releases' names of the backend's address
    (``start_proxy(host='localhost', port=8888)`` then); when given, they
    are *backend_host* and *backend_port*.

    Ready means: with *http*, the control API answers and reports this
    process's pid (so a stale proxy on the same ports is not mistaken for
    it, and the proxy port is already listening then); without it, the
    proxy logged that it listens (log on stderr, level info or debug) or,
    when its log goes elsewhere, the proxy port accepts a connection.
    *warmup* is how long it should take, in seconds: a proxy still
    starting (alive, not ready yet) when it has elapsed, on a loaded
    machine, gets up to :data:`STARTING_GRACE` more seconds. (The original
    slept *warmup* seconds and went on as long as the process was alive.)
    Raises :class:`ProxyStartError` when it exits or is not ready in
    time: its message has the proxy's error once, with the last lines of
    its log. The log (*log_output* ``'-'``) is captured, not copied to this
    process's standard error: read it with :func:`proxy_log`, or give
    *log_output* a file path. Stop the proxy with :func:`stop_proxy`.
    """
    if host is not None:
        backend_host = host
    if port is not None:
        backend_port = port
    args = proxy_args(proxy_host, proxy_port, backend_host, backend_port,
                      protocol, http, http_host, http_port, options,
                      log_level, log_output, behavior, http_token)
    offset = _size(log_output)
    process = ProxyProcess(args, log_path=log_output)
    _STARTED[process.pid] = process

    if http:
        from vaurien.client import Client
        client = Client(http_host, http_port, token=http_token, timeout=1.0)

        def ready():
            try:
                return client.get_proxy().get('pid') == process.pid
            except (OSError, ValueError):
                return False
    elif str(log_level).lower() in ('debug', 'info') and \
            log_output != os.devnull:
        # The start-up line of this very process (its pid is in every log
        # line) says that it listens: another process on that port cannot
        # be mistaken for it.
        line = r'\[%d\] \[INFO\] proxying \S+ -> ' % process.pid
        if log_output in ('-', ''):
            def ready():
                return process.search(line) is not None
        else:
            def ready():
                return _log_has(log_output, offset, line)
    else:
        def ready():
            return port_open(proxy_host, proxy_port)
    try:
        process.wait_ready(ready, warmup + STARTING_GRACE)
    except ProxyStartError:
        process.stop()
        raise
    return process.pid


def proxy_log(pid):
    """What the proxy started as *pid* by :func:`start_proxy` wrote on its
    standard error so far: its log with ``log_output='-'`` (the last
    2,000 lines). Still readable after :func:`stop_proxy` (for the last
    16 proxies stopped). Raises LookupError for a pid not started here.
    """
    process = _STARTED.get(pid) or _STOPPED.get(pid)
    if process is None:
        raise LookupError('no proxy started here with pid %r' % pid)
    return process.output()


def stop_proxy(pid):
    """Stop the proxy started as *pid* and wait until it has exited."""
    process = _STARTED.get(pid)
    if process is not None:
        process.stop()
        return
    # Not started here (another process's pid): signal it, reap if a child.
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        def gone():
            try:
                os.kill(pid, 0)
            except OSError:
                return True
            return False
        try:
            wait_for(gone, 10, 'process %d to exit' % pid, _POLL)
        except TimeoutError:
            pass
