"""``--workers N``: N processes serving one port, driven by one control API.

The parent checks the whole configuration first (:func:`vaurien.service.check`:
mistakes end there, before any fork), reserves the listening port, and
forks N workers. Each worker is a whole service
(:func:`vaurien.service.serve`) listening on the same port with
SO_REUSEPORT: the kernel spreads new connections over them. With ``--http``
the parent serves the control API over a :class:`Broadcast`: every
operation of :class:`vaurien.control.Control` goes to every worker through
a socketpair, one JSON line with an id, each worker runs it on its own proxy
and answers with that id, so they all agree before the API answers (an
answer that comes too late is never taken for another call's).

The parent supervises (:class:`Supervisor`): a worker that exits, for any
reason, is logged and replaced at once by a new one with the same number
(and the control changes made since start-up), while the others keep
serving the port. SIGTERM or SIGINT to the parent stops every worker (each
drains its connections for ``--grace`` seconds; a second signal cuts).

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
import time

import gevent
from gevent.lock import Semaphore

from vaurien.config import ConfigError, format_hostport
from vaurien.control import (MERGES, OPERATIONS, Control, ControlError,
                             one_line)
from vaurien.proxy import bind
from vaurien.service import check, serve, start_api

__all__ = ['Worker', 'Broadcast', 'Supervisor', 'run_workers']

log = logging.getLogger('vaurien')

# Seconds the parent waits for each worker to answer a control operation.
_ACK_TIMEOUT = 5.0
# Longest answer line a worker may send, in bytes (a snapshot is a few KB).
_MAX_ANSWER = 4 * 1024 * 1024
# The operations that change a worker's state, in the order a new worker
# is brought up to date with them.
STATEFUL = ('change', 'set_backend', 'set_enabled')
# Seconds between two looks for a worker that exited.
_WATCH_EVERY = 0.05
# A worker that dies within this many seconds of its start is replaced
# after a growing pause (0.25 s, 0.5 s, then _MAX_BACKOFF), not in a tight
# loop; the pause stays under a second, so that whatever ends a worker, a
# new one serves within a second.
_QUICK_DEATH = 1.0
_MAX_BACKOFF = 0.8


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
    """The parent's end of one worker's socketpair, read by lines; *name*
    says which worker it leads to (for the API's answers)."""

    def __init__(self, sock, name='a worker'):
        self.sock = sock
        self.name = name
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

    Every operation is sent to every live worker (their pipes are added
    and removed by the :class:`Supervisor`), which runs it on its own
    proxy; the answer comes once each has answered (a few seconds at
    most), so that a change is in force everywhere when the API says so,
    as with one process. Workers share one configuration, so they validate
    alike: a refusal is the first worker's. Answers are made one by
    :data:`vaurien.control.MERGES` (counters add up) or are the first
    worker's.

    When a live worker does not answer in time, the operation fails with
    ``workers_unavailable`` (503) naming it; a change is then rolled back:
    the previous state is sent to every worker, the late one included (it
    applies both in order when it wakes up). *state* is the start-up state,
    ``{operation: args}`` for each of :data:`STATEFUL`; it is kept up to
    date, and a new worker is brought up to date with what changed.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _refuse_own_operations(cls)

    def __init__(self, state):
        self.pipes = []
        self.state = dict(state)
        self.changed = []          # operations of STATEFUL used since start
        self._lock = Semaphore()   # one exchange at a time
        self._ident = 0

    def add(self, sock, name):
        """A new worker's pipe: bring it up to date, then include it."""
        pipe = _Pipe(sock, name)
        with self._lock:
            for call in STATEFUL:
                if call in self.changed:
                    ident = self._send([pipe], call, self.state[call])
                    self._collect([pipe], ident, call)
            self.pipes.append(pipe)

    def remove(self, sock):
        """A worker is gone: leave its pipe out from now on."""
        self.pipes = [pipe for pipe in self.pipes if pipe.sock is not sock]

    def _send(self, pipes, call, args):
        self._ident += 1
        line = (json.dumps({'id': self._ident, 'call': call,
                            'args': list(args)}) + '\n').encode()
        for pipe in list(pipes):
            try:
                with gevent.Timeout(_ACK_TIMEOUT):
                    pipe.sock.sendall(line)
            except (OSError, gevent.Timeout):
                pass        # gone or stuck: its answer will be missing
        return self._ident

    def _collect(self, pipes, ident, call):
        """``(answers, late)``: the answers to *ident*, and the pipes of
        the live workers that did not answer in time. A worker found gone
        is left out of both."""
        answers, late = [], []
        deadline = time.monotonic() + _ACK_TIMEOUT
        for pipe in list(pipes):
            try:
                with gevent.Timeout(max(0.01, deadline - time.monotonic())):
                    answers.append(pipe.answer(ident))
            except gevent.Timeout:
                late.append(pipe)
                log.warning('%s did not answer %r within %gs', pipe.name,
                            call, _ACK_TIMEOUT)
            except (OSError, ValueError):
                self.remove(pipe.sock)
        return answers, late

    def broadcast(self, call, *args):
        """Run operation *call* in every live worker; the answer, or
        ControlError."""
        with self._lock:
            pipes = list(self.pipes)
            ident = self._send(pipes, call, args)
            answers, late = self._collect(pipes, ident, call)
            refusals = [a['error'] for a in answers if 'error' in a]
            if late and call in STATEFUL and not refusals:
                # Undo where it was applied; the late ones get the undo
                # queued after the change itself.
                undo = self._send(pipes, call, self.state[call])
                self._collect([p for p in pipes if p not in late], undo,
                              call)
        if refusals:
            raise ControlError.from_json(refusals[0])
        if late:
            names = ', '.join(pipe.name for pipe in late)
            raise ControlError(
                'workers_unavailable', '%s did not answer within %gs: %s'
                % (names, _ACK_TIMEOUT,
                   'the change was rolled back on the others'
                   if call in STATEFUL else 'no answer is given'),
                field=names)
        if not answers:
            raise ControlError('workers_unavailable', 'no worker is running',
                               field='workers')
        if call in STATEFUL:
            self.state[call] = list(args)
            if call not in self.changed:
                self.changed.append(call)
        results = [answer['result'] for answer in answers]
        merge = MERGES.get(call)
        return merge(results) if merge else results[0]


def _reserve(local):
    """Bind (without listening) the port the workers will share."""
    return bind(local, 'listen on %s' % format_hostport(local),
                reuse_port=True)


class Supervisor:
    """The parent of ``--workers N``: forks the workers, replaces any that
    exits, stops them all on SIGTERM or SIGINT.

    *options* and *seed* are the service's; *reserve* is the bound port
    (kept so that the port stays ours); *broadcast* is the API's
    :class:`Broadcast` (None without ``--http``).
    """

    def __init__(self, options, seed, reserve, broadcast=None):
        self.options = options
        self.seed = seed
        self.reserve = reserve
        self.broadcast = broadcast
        self.count = options.workers
        self.workers = {}          # pid -> (index, parent's pipe end)
        self.started = {}          # index -> when its last worker started
        self.backoff = {}          # index -> pause before the next restart
        self.stopping = None       # when the stop began (monotonic)
        self.api = None
        self.handlers = []         # the parent's signal handlers

    def start_worker(self, index):
        """Fork worker *index* (0-based); its pid."""
        parent_end = child_end = None
        if self.options.http:
            parent_end, child_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            self._become_worker(index, child_end, parent_end)
        if child_end is not None:
            child_end.close()
        self.workers[pid] = (index, parent_end)
        self.started[index] = time.monotonic()
        if parent_end is not None and self.broadcast is not None:
            self.broadcast.add(parent_end, 'worker %d (pid %d)'
                               % (index + 1, pid))
        return pid

    def _become_worker(self, index, commands, parent_end):
        """In the child: drop what is the parent's, serve, never return."""
        status = 1
        try:
            for handler in self.handlers:
                handler.cancel()
            if self.api is not None:
                self.api.stop()       # this copy only: the parent serves
            self.reserve.close()
            for _, pipe in self.workers.values():
                if pipe is not None:
                    pipe.close()
            if parent_end is not None:
                parent_end.close()
            status = serve(self.options, self.seed,
                           Worker(index, self.count, commands))
        except ConfigError as exc:
            sys.stderr.write('vaurien: error: %s\n' % exc)
            status = 2
        except BaseException as exc:   # never return into the parent's code
            log.error('worker %d: %s: %s', index + 1, type(exc).__name__,
                      exc, exc_info=True)
        finally:
            sys.stderr.flush()
            logging.shutdown()
            os._exit(status)

    def stop(self):
        """SIGTERM or SIGINT: stop every worker (a second signal is passed
        on too: the workers then cut their connections at once)."""
        if self.stopping is None:
            self.stopping = time.monotonic()
            log.info('stopping %d workers', len(self.workers))
        for pid in list(self.workers):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def watch(self):
        """Replace workers that exit, until stopped and every worker is
        gone; the exit status."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid, status = 0, 0
            if pid == 0:
                if self.stopping is not None:
                    if not self.workers:
                        return 0
                    if time.monotonic() - self.stopping > \
                            self.options.grace + 10:
                        for left in list(self.workers):
                            _kill(left, signal.SIGKILL)
                gevent.sleep(_WATCH_EVERY)
                continue
            if pid not in self.workers:
                continue
            index, pipe = self.workers.pop(pid)
            if pipe is not None:
                if self.broadcast is not None:
                    self.broadcast.remove(pipe)
                pipe.close()
            if self.stopping is not None:
                continue
            self._replace(index, pid, os.waitstatus_to_exitcode(status))

    def _replace(self, index, pid, code):
        how = ('was killed by signal %d' % -code if code < 0
               else 'exited with status %d' % code)
        lived = time.monotonic() - self.started.get(index, 0)
        pause = 0.0
        if lived < _QUICK_DEATH:
            pause = self.backoff[index] = min(
                _MAX_BACKOFF, max(0.25, 2 * self.backoff.get(index, 0)))
        else:
            self.backoff.pop(index, None)
        log.warning('worker %d (pid %d) %s; %d of %d still serving; '
                    'starting a new one%s', index + 1, pid, how,
                    len(self.workers), self.count,
                    ' in %gs (it died %.1fs after its start)' % (pause, lived)
                    if pause else '')
        if pause:
            gevent.sleep(pause)
            if self.stopping is not None:
                return
        new = self.start_worker(index)
        log.info('worker %d is pid %d', index + 1, new)


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def run_workers(options, seed):
    """Fork ``options.workers`` workers and supervise them; exit status."""
    count = options.workers
    if options.ini is not None and options.ini.proxies:
        raise ConfigError('--workers %d: the [proxy:NAME] sections of %s '
                          'need one process (--workers 1)'
                          % (count, options.ini.path))
    # Every mistake is found here, before any fork.
    if isinstance(options.local, str):
        raise ConfigError('--workers needs a TCP --local: processes cannot '
                          'share a Unix socket with SO_REUSEPORT')
    plan = check(options)
    reserve = _reserve(options.local)
    address = reserve.getsockname()[:2]
    options.settings['local'] = (options.local[0], address[1])
    broadcast = None
    if options.http:
        broadcast = Broadcast({
            # the behavior by the names the handlers are known by
            'change': [[list(pair) for pair in plan.pairs], {}],
            'set_backend': [format_hostport(options.distant)],
            'set_enabled': [True]})
    supervisor = Supervisor(options, seed, reserve, broadcast)
    for index in range(count):
        supervisor.start_worker(index)
    if broadcast is not None:
        try:
            supervisor.api = start_api(broadcast, options,
                                       ', for %d workers' % count)
        except ConfigError:
            supervisor.stop()
            supervisor.watch()
            raise
    supervisor.handlers = [
        gevent.signal_handler(signal.SIGTERM, supervisor.stop),
        gevent.signal_handler(signal.SIGINT, supervisor.stop)]
    try:
        return supervisor.watch()
    finally:
        if supervisor.api is not None:
            supervisor.api.stop()
        reserve.close()
