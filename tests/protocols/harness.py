"""A socket-free harness for protocol framing: feed bytes, get messages.

The readers are the real ones; only the socket is replaced by a scripted
list of chunks (what ``recv`` returns, in order, then end of stream).
"""


class ScriptedSocket:
    """A stand-in socket whose ``recv`` returns scripted chunks, then b''."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.reads = 0

    def recv(self, size, flags=0):
        self.reads += 1
        if not self.chunks:
            return b''
        chunk = self.chunks.pop(0)
        if len(chunk) > size:
            self.chunks.insert(0, chunk[size:])
            chunk = chunk[:size]
        return chunk


class FakeConnection:
    """What a reader needs of a Connection: ``readers``, ``seq``, ``proxy``."""

    def __init__(self, proxy=None):
        self.readers = None
        self.seq = 1
        self.proxy = proxy


def pair(protocol, client_chunks=(), backend_chunks=()):
    """``(conn, client_reader, backend_reader)`` over scripted sockets."""
    conn = FakeConnection(protocol.proxy)
    backend = protocol.reader(conn, False, ScriptedSocket(backend_chunks))
    client = protocol.reader(conn, True, ScriptedSocket(client_chunks))
    conn.readers = (backend, client)
    return conn, client, backend


def split(data, size):
    """*data* in chunks of *size* bytes."""
    return [data[i:i + size] for i in range(0, len(data), size)] or [b'']


def whole(reader):
    """One message, joined from its head and the pieces of its rest when it
    is longer than the reader's max_message."""
    parts = [reader.read()]
    while reader.streaming:
        parts.append(reader.read())
    return b''.join(parts)


def messages(reader):
    """Every message until end of stream."""
    out = []
    while True:
        message = reader.read()
        if not message:
            return out
        out.append(message)
