"""Vaurien, the chaos TCP proxy.

Importing this package imports nothing heavy: the ``vaurien`` command
patches the standard library with gevent before anything else is loaded.
"""
__version__ = '2.0.0'

__all__ = ['__version__', 'BaseHandler', 'Client', 'start_proxy',
           'stop_proxy']

_LAZY = {
    'BaseHandler': 'vaurien.handlers.base',
    'Client': 'vaurien.client',
    'start_proxy': 'vaurien.testing',
    'stop_proxy': 'vaurien.testing',
}


def __getattr__(name):
    # Lazy, so that "import vaurien" stays cheap and does not import gevent.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError('module %r has no attribute %r'
                             % (__name__, name))
    import importlib
    return getattr(importlib.import_module(module), name)
