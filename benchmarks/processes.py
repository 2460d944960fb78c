"""Starting and always stopping the suite's processes; ports and readiness.

Every process the suite starts goes through :class:`Processes`, in its own
session (so that a forking proxy's children can be ended with it, by the
group id the suite created), and :meth:`Processes.stop_all` ends whatever
is still running. Waits are bounded everywhere.
"""
import os
import signal
import socket
import subprocess
import sys

from vaurien import poll
from vaurien.poll import wait_for

HOST = '127.0.0.1'

__all__ = ['HOST', 'Processes', 'Started', 'free_port', 'wait_until',
           'port_open', 'BenchError']


class BenchError(Exception):
    """A subject or backend could not be started or measured."""


def free_port():
    """A TCP port free right now on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, what, interval=0.02):
    """Poll *predicate* until truthy and return its value; BenchError on
    timeout (:func:`vaurien.poll.wait_for`)."""
    return wait_for(predicate, timeout, what, interval, BenchError)


def port_open(port, host=HOST):
    """True if something accepts TCP connections on *host*:*port*."""
    return poll.port_open(host, port)


class Started:
    """One process started by :class:`Processes`: ``.pid``, ``.log()``."""

    def __init__(self, name, proc, logpath):
        self.name = name
        self.proc = proc
        self.pid = proc.pid
        self.logpath = logpath

    def alive(self):
        """True while the process runs."""
        return self.proc.poll() is None

    def log(self, limit=2000):
        """The last *limit* characters of what the process printed."""
        try:
            with open(self.logpath, encoding='utf-8', errors='replace') as fh:
                return fh.read()[-limit:]
        except OSError:
            return ''

    def check_alive(self):
        """BenchError (with its output) if the process has exited."""
        if not self.alive():
            raise BenchError('%s exited with status %s: %s'
                             % (self.name, self.proc.returncode,
                                self.log(500).strip() or '(no output)'))

    def wait_port(self, port, timeout=20.0):
        """Poll until *port* accepts connections while this process lives."""
        def ready():
            self.check_alive()
            return port_open(port)
        wait_until(ready, timeout, '%s to listen on port %d'
                   % (self.name, port))
        self.check_alive()

    def stop(self, timeout=5.0):
        """SIGTERM to the process group, then SIGKILL; bounded waits."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        # Children of a forking proxy may outlive their parent briefly.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _die_with_parent():
    """In the child, before exec: get SIGKILL if the suite dies without
    cleaning up (SIGKILL cannot be caught). Linux only; best effort."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG
    except Exception:
        pass


class Processes:
    """The set of processes the suite has started; ``stop_all()`` ends them."""

    def __init__(self, workdir, verbose=True):
        self.workdir = workdir
        self.verbose = verbose
        self.running = []
        self.pids = []      # every process ever started, for the report
        self._count = 0

    def start(self, name, argv, env=None, cwd=None, stdout=None):
        """Start *argv* in a new session; its output goes to a log file
        unless *stdout* is ``subprocess.PIPE``."""
        self._count += 1
        logpath = os.path.join(self.workdir, '%02d-%s.log' % (self._count,
                                                              name))
        log = open(logpath, 'wb')
        try:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else log, stderr=log,
                start_new_session=True, preexec_fn=_die_with_parent)
        except FileNotFoundError as exc:
            raise BenchError('cannot run %s: %s' % (argv[0], exc)) from None
        finally:
            log.close()
        started = Started(name, proc, logpath)
        self.running.append(started)
        self.pids.append(proc.pid)
        if self.verbose:
            sys.stderr.write('  started %s, pid %d\n' % (name, proc.pid))
            sys.stderr.flush()
        return started

    def stop(self, started):
        """Stop one process started here."""
        started.stop()
        if started in self.running:
            self.running.remove(started)

    def stop_all(self):
        """Stop every process still running, newest first."""
        while self.running:
            self.stop(self.running[-1])
