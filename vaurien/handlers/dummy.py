"""The ``dummy`` handler."""
from vaurien.handlers.base import BaseHandler


class Dummy(BaseHandler):
    """Passes everything through untouched.

    This is what happens to the share of events no other handler takes (the
    remainder of ``--behavior`` up to 100). Inside the proxy the engine
    relays a ``dummy`` event itself, with the same result and less work.
    """
    name = 'dummy'
    effect = 'passed'
    options = {}
