"""A protocol of your own: newline-delimited text, one line per message.

Use it with ``vaurien --protocol line_protocol.Lines`` (run from this
directory, or with it on PYTHONPATH), or name it in the INI file::

    [vaurien]
    protocol = lines

    [protocol:lines]
    callable = line_protocol.Lines
    error_text = BUSY try again later
"""
from vaurien.protocols import BaseProtocol


class Lines(BaseProtocol):
    """Each request and each reply is one line ending with ``\\n``.

    Errors: the reply line is replaced by ``ERR <error_text>``.
    """
    name = 'lines'
    options = {
        'error_text': ("What follows ERR in an injected error", str,
                       'server unavailable'),
    }

    def request(self, stream, session):
        line = yield from stream.line()
        return line

    def response(self, stream, session):
        line = yield from stream.line()
        return line

    def error(self, info, session, rng):
        text = 'ERR %s\n' % self.option('error_text')
        return text.encode('utf-8'), False
