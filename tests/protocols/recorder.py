"""A test handler that records every message it is given, then forwards it.

Used to check framing end to end: in protocol mode each call must get
exactly one whole message. Records go to the file named by the ``path``
option, one ``direction + 8-byte length + bytes`` record per call.
"""
import struct

from vaurien.handlers import BaseHandler


class Recorder(BaseHandler):
    """Forward each message untouched, appending it to a record file."""
    name = 'recorder'
    options = {'path': ("File the records are appended to", str, '')}

    def __call__(self, client_sock, backend_sock, to_backend):
        data = self._get_data(client_sock, backend_sock, to_backend)
        if not data:
            return False
        with open(self.option('path'), 'ab') as fh:
            fh.write((b'U' if to_backend else b'D')
                     + struct.pack('>Q', len(data)) + data)
        self._forward(client_sock, backend_sock, to_backend, data)
        return True


def load(path):
    """The records of *path*: ``[('up' | 'down', bytes), ...]``."""
    try:
        with open(path, 'rb') as fh:
            raw = fh.read()
    except FileNotFoundError:
        return []
    records, pos = [], 0
    while pos < len(raw):
        kind = 'up' if raw[pos:pos + 1] == b'U' else 'down'
        size = struct.unpack('>Q', raw[pos + 1:pos + 9])[0]
        records.append((kind, raw[pos + 9:pos + 9 + size]))
        pos += 9 + size
    return records
