"""``--workers N``: N processes serving one port, driven by one control API.

The parent checks the whole configuration first (:func:`vaurien.service.check`:
mistakes end there, before any fork), reserves the listening port, and
forks N workers. Each worker is a whole service
(:func:`vaurien.service.serve`) listening on the same port with
SO_REUSEPORT: the kernel spreads new connections over them. With ``--http``
the parent serves the control API over a :class:`Broadcast`: every
operation of :class:`vaurien.control.Control` goes to every worker through
a socketpair, one JSON line, each worker runs it on its own proxy and
answers, so they all agree before the API answers. SIGTERM or SIGINT to the
parent stops them all.

Each worker has its own handler instances (a shared counter such as
``error``'s warm-up counts per worker); ``GET /metrics`` adds up the
counters of every worker.
"""
import abc
import json
import logging
import os
import signal
import socket
import sys

import gevent
from gevent.lock import Semaphore

from vaurien.config import ConfigError, format_hostport
from vaurien.control import (MERGES, OPERATIONS, Control, ControlError,
                             one_line)
from vaurien.proxy import bind
from vaurien.service import check, serve, start_api

__all__ = ['Worker', 'Broadcast', 'run_workers']

log = logging.getLogger('vaurien')

# Seconds the parent waits for each worker to answer a control operation.
_ACK_TIMEOUT = 5.0
# Longest answer line a worker may send, in bytes (a snapshot is a few KB).
_MAX_ANSWER = 4 * 1024 * 1024


class Worker:
    """One worker process: its index, the number of workers, its commands."""

    def __init__(self, index, count, commands=None):
        self.index = index
        self.count = count
        self.commands = commands    # this end of the parent's socketpair

    def describe(self):
        """The suffix of the start-up log line."""
        return ', worker %d of %d' % (self.index + 1, self.count)

    def follow(self, control, gone):
        """Run the parent's operations on *control* (a
        :class:`~vaurien.control.Control`), and call *gone* once the parent
        has gone away."""
        if self.commands is not None:
            gevent.spawn(self._follow, control, gone)

    def _follow(self, control, gone):
        commands = self.commands
        with commands.makefile('rb') as stream:
            for line in stream:
                answer = self.apply(control, line)
                try:
                    commands.sendall(answer)
                except OSError:
                    break
        # The parent is gone: so is this worker.
        gone()

    def apply(self, control, line):
        """Run one command line ``{"id", "call", "args"}`` on *control*;
        the answer line ``{"id", "result"}`` or ``{"id", "error"}``."""
        ident = None
        try:
            command = json.loads(line)
            ident, call = command['id'], command['call']
            if call not in OPERATIONS:
                raise ValueError('no operation %r' % call)
            result = getattr(control, call)(*command['args'])
            if hasattr(result, 'to_json'):
                result = result.to_json()
            answer = {'id': ident, 'result': result}
        except ControlError as exc:
            answer = {'id': ident, 'error': exc.to_json()}
        except Exception as exc:
            log.error('worker %d: a control operation failed: %s: %s',
                      self.index + 1, type(exc).__name__, exc)
            answer = {'id': ident, 'error': ControlError(
                'internal_error', 'internal error: %s'
                % one_line(exc)).to_json()}
        return (json.dumps(answer) + '\n').encode()


class _Pipe:
    """The parent's end of one worker's socketpair, read by lines."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b''

    def answer(self, ident):
        """The answer to command *ident* (older, late answers skipped);
        OSError when the worker is gone, gevent.Timeout when late."""
        while True:
            line, newline, rest = self.buffer.partition(b'\n')
            if newline:
                self.buffer = rest
                answer = json.loads(line)
                if answer.get('id') == ident:
                    return answer
                continue
            if len(self.buffer) > _MAX_ANSWER:
                raise OSError('answer too long')
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError('worker gone')
            self.buffer += chunk


def _forwarder(name):
    def forward(self, *args):
        return self.broadcast(name, *args)
    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = getattr(Control, name).__doc__
    forward.forwarded = True
    return forward


def _refuse_own_operations(cls):
    for name in OPERATIONS:
        if name in vars(cls):
            raise TypeError('%s defines %s itself: every operation is '
                            'forwarded to the workers' % (cls.__name__, name))


def _forward_every_operation(cls):
    """Make each operation of :class:`~vaurien.control.Control` a call to
    every worker: one mechanism for all, so that a new operation cannot
    reach the parent only."""
    _refuse_own_operations(cls)
    for name in OPERATIONS:
        setattr(cls, name, _forwarder(name))
    abc.update_abstractmethods(cls)
    return cls


@_forward_every_operation
class Broadcast(Control):
    """The parent's :class:`~vaurien.control.Control` with ``--workers``.

    Every operation is sent to every worker (*pipes*: the parent's ends of
    their socketpairs), which runs it on its own proxy; the answer comes
    once each has answered (a few seconds at most), so that a change is in
    force everywhere when the API says so, as with one process. Workers
    share one configuration, so they validate alike: a refusal is the first
    worker's. Answers are made one by :data:`vaurien.control.MERGES`
    (counters add up) or are the first worker's.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _refuse_own_operations(cls)

    def __init__(self, pipes):
        self.pipes = [_Pipe(sock) for sock in pipes]
        self._lock = Semaphore()   # one exchange at a time
        self._ident = 0

    def broadcast(self, call, *args):
        """Run operation *call* in every worker; the answer, or
        ControlError."""
        with self._lock:
            self._ident += 1
            ident = self._ident
            line = (json.dumps({'id': ident, 'call': call, 'args': args})
                    + '\n').encode()
            for pipe in list(self.pipes):
                try:
                    pipe.sock.sendall(line)
                except OSError:
                    self.pipes.remove(pipe)
            answers = []
            for pipe in list(self.pipes):
                try:
                    with gevent.Timeout(_ACK_TIMEOUT):
                        answers.append(pipe.answer(ident))
                except (OSError, ValueError, gevent.Timeout):
                    log.warning('a worker did not answer %r', call)
        for answer in answers:
            if 'error' in answer:
                raise ControlError.from_json(answer['error'])
        if not answers:
            raise ControlError('internal_error', 'internal error: no worker '
                               'answered %r' % call)
        results = [answer['result'] for answer in answers]
        merge = MERGES.get(call)
        return merge(results) if merge else results[0]


def _reserve(local):
    """Bind (without listening) the port the workers will share."""
    return bind(local, 'listen on %s' % format_hostport(local),
                reuse_port=True)


def run_workers(options, seed):
    """Fork ``options.workers`` workers and supervise them; exit status."""
    count = options.workers
    # Every mistake is found here, before any fork.
    if isinstance(options.local, str):
        raise ConfigError('--workers needs a TCP --local: processes cannot '
                          'share a Unix socket with SO_REUSEPORT')
    check(options)
    reserve = _reserve(options.local)
    address = reserve.getsockname()[:2]
    options.settings['local'] = (options.local[0], address[1])

    pipes, pids = [], []
    for index in range(count):
        if options.http:
            parent_end, child_end = socket.socketpair()
        else:
            parent_end = child_end = None
        pid = os.fork()
        if pid == 0:
            reserve.close()
            for sock in pipes + ([parent_end] if parent_end else []):
                sock.close()
            status = 1
            try:
                status = serve(options, seed, Worker(index, count, child_end))
            except ConfigError as exc:
                sys.stderr.write('vaurien: error: %s\n' % exc)
                status = 2
            except BaseException as exc:   # never return into the parent
                log.error('worker %d: %s: %s', index + 1,
                          type(exc).__name__, exc, exc_info=True)
            finally:
                sys.stderr.flush()
                logging.shutdown()
                os._exit(status)
        pids.append(pid)
        if child_end is not None:
            child_end.close()
            pipes.append(parent_end)

    control = None
    if options.http:
        try:
            control = start_api(Broadcast(pipes), options,
                                ', for %d workers' % count)
        except ConfigError:
            _stop(pids)
            raise

    def stop():
        log.info('stopping %d workers', count)
        _stop(pids)
    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)

    statuses = []
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        statuses.append(code)
        if code not in (0, -signal.SIGTERM):
            log.warning('a worker exited with status %d: stopping the '
                        'others', code)
            _stop(pids)
    if control is not None:
        control.stop()
    reserve.close()
    failed = [code for code in statuses if code not in (0, -signal.SIGTERM)]
    return failed[0] if failed and failed[0] > 0 else (1 if failed else 0)


def _stop(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
