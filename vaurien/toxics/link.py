"""The runtime of a chain: one :class:`Link` per direction of a connection.

The engine reads the source as usual and hands the data to the link
(:meth:`Link.feed`); the link's pump, one greenlet, takes the chunks in
order and passes each down the stream's current chain, then writes what
comes out to the destination. A toxic that waits (``latency``) waits on an
absolute time counted from when the chunk was read, so the engine keeps
reading meanwhile (up to :data:`QUEUE_BUFFERS` buffers ahead, then TCP flow
control holds the sender back) and a stream is delayed, not slowed down.

Changes never block: :class:`~vaurien.toxics.ToxicSet` swaps its chains and
wakes every link; a pump that is waiting looks at the chain again (a
removed toxic lets its chunk go at once, an updated one recomputes its
wait), one that is writing sees the change at its next chunk. A chunk keeps
the key of the last toxic it went through, so a change never applies a
toxic twice to the same bytes nor reorders them.

With a weighted ``behavior`` on the proxy, the handler picked for each
chunk acts first, then the toxics (:mod:`vaurien.toxics.handler`).

The pump is only woken when it has work: while it is idle, a chunk that
every toxic of the stream would pass on at once (``latency`` 0, a
``bandwidth`` within its schedule...: :meth:`ToxicType.instant`) goes
through the chain right where the engine read it, and is sent without
waiting; what the destination cannot take at once is left to the pump,
which sends it before anything else.

Cheaper still, the shortcut: when the chain changes, the link lists what
its toxics need to let a chunk through unchanged (the ones that always do
are left out, a ``bandwidth`` is asked to move its schedule:
:meth:`ToxicType.passes` and ``fast``). While the pump is parked with
nothing to do, a chunk whose pick is a pass-through is checked against
that list (one clock read, none when the list is empty) and sent straight
from the engine's read buffer: no Chunk, no walk down the chain. A toxic
that says no sends it down the full path from there (``Chunk.after``).
Whatever wakes the pump (data queued, a change, the end) turns the
shortcut off until it parks again, so nothing overtakes queued data and
a change acts on the next chunk.
"""
import logging
import random
import socket as _socket
import struct
import time

import gevent
from gevent.event import Event

from vaurien.behavior import PASS
from vaurien.toxics.base import Chunk, LinkStopped
from vaurien.toxics.handler import call_handler

__all__ = ['Link', 'QUEUE_BUFFERS']

log = logging.getLogger('vaurien')

#: How many read buffers a link holds, at most, before the engine stops
#: reading its source.
QUEUE_BUFFERS = 4

_LINGER_RESET = struct.pack('ii', 1, 0)
_STREAMS = ('downstream', 'upstream')


def roll(seed, seq, stream, name):
    """The toxicity roll (0 <= roll < 1) of toxic *name* on one stream of
    connection *seq*: the toxic acts when ``roll < toxicity``."""
    return random.Random('toxicity/%d/%d/%s/%s'
                         % (seed, seq, stream, name)).random()


class Link:
    """One direction of one connection, going through its proxy's toxics.

    *conn* is the engine's connection (``client``, ``backend``, ``seq``,
    ``closed``, ``close(by)``, ``direction_ended(to_backend, how)``),
    *source* the engine's reader of the direction (``resume()`` once the
    link has room again), *send* the destination's non-blocking send
    (returns the count sent, raises BlockingIOError), *pick* the
    behavior's picker of the direction (``pick() -> (name, handler)``) or
    None.
    """

    def __init__(self, conn, to_backend, toxics, source, send, pick=None,
                 seed=0, bufsize=65536):
        self.conn = conn
        self.to_backend = to_backend
        self.stream = _STREAMS[to_backend]
        self.toxics = toxics
        self.source = source
        self.pick = pick
        self.seed = seed
        self.dst = conn.backend if to_backend else conn.client
        self.send = send
        self.outbox = None       # bytes the destination could not take yet
        self.parked = False      # the pump is idle, waiting for data
        self.inline = False      # a chunk is going through in feed()
        self.limit = QUEUE_BUFFERS * bufsize
        self.inbox = []
        self.head = 0
        self.queued = 0
        self.paused = False
        self.source_ended = False
        self.stopped = False
        self.event = Event()
        self.version = -1
        self.fast = None         # the shortcut of feed(): see _shortcut()
        # self.fast while the pump is parked with nothing left to do and
        # the chain as it synced it, else None (see _park and _rouse).
        self.express = None
        self.active = {}         # key -> Toxic, acting on this connection
        self.states = {}         # key -> dict, per-connection toxic state
        self.rolls = {}          # toxic name -> roll
        self.random = random.Random('toxics/%d/%d/%s'
                                    % (seed, conn.seq, self.stream))
        self.greenlet = None

    # -- the engine's side ---------------------------------------------------

    def start(self):
        """Start the pump (a greenlet)."""
        self.toxics.links.add(self)
        self.greenlet = gevent.spawn(self._run)

    def feed(self, data):
        """Data read from the source (bytes-like: the caller may reuse
        its buffer once this returns, the link copies what it keeps);
        False when the link is full (the engine stops reading until
        ``source.resume()``)."""
        if self.source_ended:
            return True       # a handler ended the direction: dropped
        picked = None
        if self.pick is not None:
            picked = self.pick()
        fast = self.express
        if fast is not None and (picked is None or picked[1] is PASS):
            # The shortcut: every toxic lets the chunk through unchanged
            # and at once; no Chunk, straight to the destination.
            if fast:
                stamp = time.monotonic()
                size = len(data)
                try:
                    for check, toxic, state, after in fast:
                        if not check(self, toxic, state, size, stamp):
                            break
                    else:
                        after = -1          # every toxic let it through
                except Exception as exc:
                    self._failed(exc)
                    return True
                if after >= 0:
                    # On down the full path from the toxic that said no.
                    chunk = Chunk(bytes(data), stamp)
                    chunk.handler = picked
                    chunk.after = after
                    return self._queue(chunk, True)
            try:
                sent = self.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except Exception as exc:
                self._failed(exc)
                return True
            self.dst.sent += sent       # the raw send does not count
            if sent != len(data):
                self.outbox = bytearray(data[sent:])
                self._rouse()
            return True
        chunk = Chunk(bytes(data), time.monotonic())
        chunk.handler = picked
        return self._queue(chunk, self.parked and self.outbox is None
                           and not self.queued
                           and self.version == self.toxics.version)

    def _queue(self, chunk, idle):
        """*chunk* through the chain at once when the pump is *idle* and
        every toxic left would pass it on without waiting, else to the
        pump; False when the link is now full."""
        if idle and self._instant(chunk):
            self._through_now(chunk)
            return True
        self.inbox.append(chunk)
        self.queued += len(chunk.data)
        self._rouse()
        if self.queued >= self.limit:
            self.paused = True
            return False
        return True

    def feed_eof(self):
        """The source reached end of stream."""
        self.source_ended = True
        self._rouse()

    def has_room(self):
        return self.queued < self.limit

    def stop(self):
        """The connection is closed: end the pump (the engine's close)."""
        if not self.stopped:
            self.stopped = True
            self.toxics.links.discard(self)
            self._rouse()

    def wake(self):
        """The chain changed (:class:`~vaurien.toxics.ToxicSet`)."""
        self._rouse()

    def _rouse(self):
        """Wake the pump: from now until it parks again, every chunk
        takes the full path."""
        self.express = None
        self.event.set()

    # -- what toxics use ------------------------------------------------------

    def state(self, toxic):
        """A dict private to *toxic* on this connection and direction."""
        state = self.states.get(toxic.key)
        if state is None:
            state = self.states[toxic.key] = {}
        return state

    def present(self, toxic):
        """Is *toxic* still acting on this connection?"""
        self._check()
        return toxic.key in self.active

    def wait_until(self, deadline, toxic):
        """Wait until *deadline* (monotonic seconds): True when reached,
        False as soon as the chain changed (the caller looks at *toxic*
        again: removed, or with new attributes)."""
        version = self.toxics.version
        while True:
            if self.stopped:
                raise LinkStopped()
            if self.toxics.version != version:
                self._sync()
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self._block(left)

    def close(self):
        """Close the connection (a toxic ends it)."""
        self.conn.close('handler')
        raise LinkStopped()

    def reset(self):
        """Close the connection with a TCP RST on both sides."""
        for sock in (self.conn.client, self.conn.backend):
            try:
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER,
                                _LINGER_RESET)
            except OSError:
                pass
        self.close()

    def end_source(self):
        """A handler said the direction has ended: what is still queued
        is dropped and the end of stream goes down the chain."""
        self.source_ended = True
        self.express = None
        self.inbox, self.head, self.queued = [], 0, 0

    def next_data(self):
        """For a handler reading past its chunk: the next data from the
        source, waiting for it (``b''`` at end of stream)."""
        while True:
            if self.stopped:
                raise LinkStopped()
            chunk = self._take()
            if chunk is not None:
                return chunk.data
            if self.source_ended:
                return b''
            self._block(None)

    # -- the pump -------------------------------------------------------------

    def _run(self):
        try:
            self._sync()
            while True:
                if self.stopped:
                    return
                self._check()
                if self.outbox is not None:
                    self._flush()
                    continue
                chunk = self._take()
                if chunk is not None:
                    self._head(chunk)
                    if self.head < len(self.inbox):
                        # one buffer at a time: let the loop run between
                        gevent.sleep(0)
                    continue
                if self.source_ended:
                    self._eof(0)
                    return
                self._idle()
        except LinkStopped:
            pass
        except Exception as exc:
            self._failed(exc)
        finally:
            self.toxics.links.discard(self)

    def _failed(self, exc):
        """The chain raised *exc*: end the connection (a peer's socket
        error is logged at DEBUG, anything else at ERROR)."""
        if isinstance(exc, OSError):
            if not self.conn.closed:
                log.debug('connection %d (%s): %s', self.conn.seq,
                          self.stream, exc)
                self.conn.close('error')
            return
        log.error('toxics failed on connection %d (%s): %s: %s',
                  self.conn.seq, self.stream, type(exc).__name__, exc,
                  exc_info=exc)
        self.conn.close('error')

    def _instant(self, chunk):
        """Would every toxic (after the chunk's last) pass *chunk* on
        without waiting?"""
        handler = chunk.handler
        if handler is not None and handler[1] is not PASS:
            return False
        after = chunk.after
        for key, toxic in self.active.items():
            if key > after and not toxic.kind.instant(self, toxic, chunk):
                return False
        return True

    def _through_now(self, chunk):
        """The chain for *chunk*, in the caller (the engine's read)."""
        self.inline = True
        try:
            self._pass(chunk, chunk.after)
        except LinkStopped:
            pass
        except Exception as exc:
            self._failed(exc)
        finally:
            self.inline = False

    def _write(self, data):
        """Out to the destination: at once in feed(), through the outbox
        when it is full; the pump may wait."""
        if self.inline:
            if self.outbox is None:
                try:
                    sent = self.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                self.dst.sent += sent       # the raw send does not count
                if sent == len(data):
                    return
                self.outbox = bytearray(data[sent:])
                self._rouse()
            else:
                self.outbox += data
            return
        if self.outbox is not None:
            self._flush()
        self.dst.sendall(data)

    def _flush(self):
        outbox, self.outbox = self.outbox, None
        self.dst.sendall(outbox)

    def _take(self):
        inbox = self.inbox
        if self.head >= len(inbox):
            return None
        chunk = inbox[self.head]
        inbox[self.head] = None
        self.head += 1
        if self.head > 64 and self.head * 2 > len(inbox):
            del inbox[:self.head]
            self.head = 0
        self.queued -= len(chunk.data)
        if self.paused and self.queued < self.limit and not self.stopped:
            self.paused = False
            self.source.resume()
        return chunk

    def _block(self, seconds):
        self.event.wait(seconds)
        self.event.clear()

    def _idle(self):
        """No data: wait for some, for a change, or for a toxic's deadline."""
        deadline = None
        for toxic in self.active.values():
            due = toxic.kind.deadline(self, toxic)
            if due is not None and (deadline is None or due < deadline):
                deadline, first = due, toxic
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                first.kind.idle(self, first)
                return
            self._park(left)
        else:
            self._park(None)

    def _park(self, seconds):
        self.parked = True
        if (self.outbox is None and not self.queued
                and not self.source_ended and not self.stopped
                and self.version == self.toxics.version):
            self.express = self.fast
        try:
            self._block(seconds)
        finally:
            self.parked = False
            self.express = None

    def _check(self):
        if self.stopped:
            raise LinkStopped()
        if self.version != self.toxics.version:
            self._sync()

    def _sync(self):
        """Bring ``active`` in line with the current chain."""
        self.version = self.toxics.version
        current = {}
        seq = self.conn.seq
        for toxic in self.toxics.chain(self.to_backend):
            value = self.rolls.get(toxic.name)
            if value is None:
                value = self.rolls[toxic.name] = roll(
                    self.seed, seq, self.stream, toxic.name)
            if value < toxic.toxicity:
                current[toxic.key] = toxic
        old, self.active = self.active, current
        for key, toxic in current.items():
            if key not in old:
                toxic.kind.started(self, toxic)
        for key, toxic in old.items():
            if key not in current:
                self.states.pop(key, None)
                if self.toxics.get(toxic.name) is not toxic:
                    toxic.kind.removed(self, toxic)
        self.fast = self._shortcut()

    def _shortcut(self):
        """The shortcut of feed() for the active toxics: a list of
        ``(fast, toxic, state, after)`` to ask for each chunk, *after*
        being the key of the toxic asked before (0 for the first); empty
        when every toxic lets every chunk through; None when one of them
        always takes the full path."""
        fast = []
        after = 0
        for toxic in self.active.values():
            kind = toxic.kind
            if kind.passes():
                continue
            if kind.fast is None:
                return None
            fast.append((kind.fast, toxic, self.state(toxic), after))
            after = toxic.key
        return fast

    def _next(self, after):
        self._check()
        for key, toxic in self.active.items():
            if key > after:
                return toxic
        return None

    def _head(self, chunk):
        """One chunk from the source: the behavior's pick, then the chain."""
        picked = chunk.handler
        if picked is not None:
            name, handler = picked
            if handler is not PASS:
                goes_on = call_handler(self, name, handler, chunk,
                                       self._emit_from_head)
                if not goes_on:
                    self.end_source()
                return
        self._pass(chunk, chunk.after)

    def _emit_from_head(self, data):
        self._pass(Chunk(data, time.monotonic()), 0)

    def _pass(self, chunk, after):
        """*chunk* through the toxics after key *after*, then out."""
        toxic = self._next(after)
        if toxic is None:
            if chunk.data:
                self._write(chunk.data)
            return
        key = toxic.key
        toxic.kind.apply(self, toxic, chunk,
                         lambda piece: self._pass(piece, key))

    def _eof(self, after):
        """End of stream through the toxics after key *after*, then out."""
        toxic = self._next(after)
        if toxic is None:
            if self.outbox is not None:
                self._flush()
            self.toxics.links.discard(self)
            self.conn.direction_ended(self.to_backend, 'eof')
            return
        key = toxic.key
        toxic.kind.eof(self, toxic, lambda: self._eof(key))
