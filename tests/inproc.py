"""The ``vaurien`` command's proxy, run in a thread of the test process.

A handler test needs a real proxy with real sockets, not a process: the
imports of ``python -m vaurien`` cost more than most handler tests. An
:class:`InProcessVaurien` parses its arguments with :mod:`vaurien.cli` and
starts the service with :func:`vaurien.service.start`, the code path of
the command (a :class:`~vaurien.service.GroupService`: the ``default``
proxy of ``--local``/``--distant``, any ``[proxy:NAME]`` sections, the
API), in an OS thread of its own where it runs its own gevent hub
(gevent hubs are per thread). Nothing in the test process is
monkey-patched: the tests keep using blocking standard-library sockets in
their own thread. ``stop()`` ends the service in its thread as the
command's end does (the API and every proxy stopped, then the observers
closed), destroys the thread's hub and loop, and waits until the thread
has ended: nothing is left behind (``tests/test_inproc.py`` checks
threads and descriptors). What the command would print on stderr of an
uncaught exception in a greenlet (gevent's hub prints it) is in the log
too: ``output()``, the command's stdout, stderr and log, is ``log()``.

Code imported from a user's directory (``extra_paths``, as for
:class:`support.VaurienProcess`): the directories are put first on
``sys.path`` for the proxy's life, and ``stop()`` takes them off again
with the modules imported from them meanwhile (and their import caches),
so that the next test imports its own modules of the same names afresh.

What stays with :class:`support.VaurienProcess`: tests of the command
itself (exit status, messages, signals, ``--workers``, ``--demo``).
"""
import importlib
import logging
import os
import random
import socket
import sys
import threading

import gevent
from gevent.event import Event

from vaurien.cli import parse_args
from vaurien.proxyconf import DEFAULT_NAME
from vaurien.service import start

import support

__all__ = ['InProcessVaurien', 'call_in_loop']

_FORMAT = '%(asctime)s [%(process)d] [%(levelname)s] %(message)s'
_LOGGER = logging.getLogger('vaurien')


class _ThreadLog(logging.Handler):
    """Keeps the formatted records the proxy's own thread logs."""

    def __init__(self, level):
        super().__init__(level)
        self.setFormatter(logging.Formatter(_FORMAT))
        self.ident = None
        self.lines = []

    def filter(self, record):
        return record.thread == self.ident and super().filter(record)

    def emit(self, record):
        self.lines.append(self.format(record) + '\n')


class _HubStream:
    """The proxy hub's ``exception_stream``: what gevent prints of an
    uncaught exception (the command's stderr) goes into the log."""

    def __init__(self, log):
        self.log = log

    def write(self, text):
        self.log.lines.append(text)

    def flush(self):
        pass


class _ImportPaths:
    """Directories on ``sys.path`` for a while, then off it again with the
    modules imported from them (those already imported stay)."""

    def __init__(self, paths):
        self.paths = [os.path.abspath(path) for path in paths]
        self.added = [path for path in self.paths if path not in sys.path]
        self.modules = set(sys.modules)
        sys.path[:0] = self.added
        importlib.invalidate_caches()   # files written just before

    def _inside(self, module):
        places = [getattr(module, '__file__', None) or '']
        places += list(getattr(module, '__path__', None) or ())  # packages
        return any(place.startswith(path + os.sep)
                   for place in places for path in self.paths)

    def remove(self):
        for path in self.added:
            while path in sys.path:
                sys.path.remove(path)
            sys.path_importer_cache.pop(path, None)
        for name in list(sys.modules):
            if name not in self.modules and self._inside(sys.modules[name]):
                del sys.modules[name]
        importlib.invalidate_caches()


def call_in_loop(loop, function, *args, timeout=15.0):
    """``function(*args)`` run by the gevent *loop* of another thread; its
    result, or its exception raised here."""
    done = threading.Event()
    result = {}

    def run():
        try:
            result['value'] = function(*args)
        except BaseException as exc:
            result['error'] = exc
        done.set()
    loop.run_callback_threadsafe(run)
    assert done.wait(timeout), 'the proxy thread did not answer'
    if 'error' in result:
        raise result['error']
    return result['value']


class InProcessVaurien:
    """``vaurien ARGS`` in a thread of this process, as the command runs it.

    The same interface as :class:`support.VaurienProcess` for what a
    handler test uses: ``address``, ``port``, ``connect()``, ``log()``,
    ``stop()`` (returns the log), ``output()``, ``running()``, ``pid``
    (this process), ``http_port`` with ``--http``, ``extra_paths`` (see
    above); and ``call(function, *args)``, which runs *function* in the
    proxy's thread. ``service`` is the
    :class:`~vaurien.service.GroupService`, ``proxy`` the engine
    (:class:`~vaurien.proxy.Proxy`) of its ``default`` proxy, whose
    address is ``address``. Listens on 127.0.0.1:0 unless ``--local`` is
    given or *free_local* is false (then, with ``[proxy:NAME]`` sections
    alone, there is no ``default`` proxy: ``proxy``, ``address`` and
    ``port`` are None). ``--log-output`` is ignored: the log is kept in
    memory.
    """

    def __init__(self, *args, backend=None, extra_paths=(), free_local=True,
                 timeout=15.0):
        argv = []
        if free_local and '--local' not in args:
            argv += ['--local', '%s:0' % support.HOST]
        if backend is not None:
            argv += ['--distant', '%s:%d' % tuple(backend)]
        argv += list(args)
        self.argv = argv
        self._paths = _ImportPaths(extra_paths)
        try:
            options, command = parse_args(argv)
            if command.check or command.demo or options.workers > 1:
                raise ValueError('--check, --demo and --workers run the '
                                 'command itself: use support.VaurienProcess')
        except BaseException:
            self._paths.remove()
            raise
        seed = options.seed
        if seed is None:
            seed = random.SystemRandom().randrange(2 ** 32)
        self.pid = os.getpid()
        self._log = _ThreadLog(options.log_level.upper())
        if _LOGGER.getEffectiveLevel() > self._log.level:
            _LOGGER.setLevel(self._log.level)
        _LOGGER.addHandler(self._log)
        self._ready = threading.Event()
        self._error = None
        self._stopped_text = None
        self._stopped = None     # the gevent Event serve_forever waits on
        self._loop = None        # the loop of the proxy thread's hub
        self.service = None
        self.thread = threading.Thread(target=self._main,
                                       args=(options, seed), daemon=True,
                                       name='vaurien-inproc')
        self.thread.start()
        if not self._ready.wait(timeout):
            raise AssertionError('vaurien did not start within %ss: %s'
                                 % (timeout, self.stop()))
        if self._error is not None:
            self.stop()
            raise self._error
        self.proxy = self.address = self.port = None
        if DEFAULT_NAME in self.service.group:
            self.proxy = self.service.group.get(DEFAULT_NAME).proxy
            self.address = self.proxy.address
            if isinstance(self.address, tuple):
                self.port = self.address[1]
        self.http_port = None
        if self.service.api is not None:
            self.http_port = self.service.api.address[1]

    def _main(self, options, seed):
        self._log.ident = threading.get_ident()
        hub = gevent.get_hub()
        hub.exception_stream = _HubStream(self._log)
        self._loop = hub.loop
        self._stopped = Event()
        try:
            try:
                for level, note in options.notes:   # as run.run logs them
                    _LOGGER.log(level, note)
                self.service = start(options, seed)
            except BaseException as exc:    # raised in the test's thread
                self._error = exc
                return
            finally:
                self._ready.set()
            self.service.serve_forever(self._stopped)
        finally:
            hub.destroy(destroy_loop=True)

    def call(self, function, *args, timeout=15.0):
        """``function(*args)`` in the proxy's thread (its gevent hub); its
        result, or its exception raised here."""
        return call_in_loop(self._loop, function, *args, timeout=timeout)

    def running(self):
        """True while the proxy's thread runs."""
        return self.thread.is_alive()

    def log(self):
        if self._stopped_text is not None:
            return self._stopped_text
        return ''.join(self._log.lines)

    def output(self):
        """The log, with what gevent's hub printed (see above)."""
        return self.log()

    def connect(self, timeout=10.0):
        if isinstance(self.address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.address)
            return sock
        return socket.create_connection(self.address, timeout=timeout)

    def stop(self, timeout=10.0):
        """Stop the service and end its thread; returns its log.

        Calling it again returns the same text.
        """
        if self._stopped_text is not None:
            return self._stopped_text
        if self.thread.is_alive() and self.service is not None:
            self._loop.run_callback_threadsafe(self._stopped.set)
        self.thread.join(timeout)
        _LOGGER.removeHandler(self._log)
        self._paths.remove()
        alive = self.thread.is_alive()
        self._stopped_text = ''.join(self._log.lines)
        if alive:
            raise AssertionError('the proxy thread did not end within %ss: %s'
                                 % (timeout, self._stopped_text))
        return self._stopped_text
