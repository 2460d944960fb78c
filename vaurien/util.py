"""The names earlier Vaurien releases had in ``vaurien.util``.

``from vaurien.util import start_proxy, stop_proxy`` works as it did in
both the 2012 releases and 1.x (they live in :mod:`vaurien.testing`), and
``get_data(sock[, buffer])``, which 1.x behaviors used to read a socket,
reads from a socket of a proxied connection.
"""
from vaurien.handlers.legacy import get_data
from vaurien.testing import start_proxy, stop_proxy

__all__ = ['start_proxy', 'stop_proxy', 'get_data']
