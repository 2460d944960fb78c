"""Vaurien, the chaos TCP proxy.

Importing this package imports nothing heavy: the ``vaurien`` command
patches the standard library with gevent before anything else is loaded.
"""
__version__ = '2.0.0'

__all__ = ['__version__', 'BaseHandler']


def __getattr__(name):
    # Lazy, so that "import vaurien" stays cheap and does not import gevent.
    if name == 'BaseHandler':
        from vaurien.handlers.base import BaseHandler
        return BaseHandler
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
