"""gevent's monkey patching, first thing in every Vaurien process.

:func:`patch_all` is ``gevent.monkey.patch_all()`` with one difference in
cost, none in effect: while it runs, ``importlib.metadata.entry_points()``
reads the installed packages once and answers every question from that.
gevent looks for plugins of its patching events about 25 times per
``patch_all()``, and each look would read the metadata of every installed
distribution again; on a machine with many packages
that is 0.1–0.2 s of CPU at every start of the ``vaurien`` command, of a
worker, or of ``vaurien-toxiproxy``. The installed distributions do not
change while the patching runs, so the answers are the same.

This module imports nothing but gevent's ``monkey`` and the standard
library's ``importlib.metadata``, so that it can run before anything else.
"""
from importlib import metadata

from gevent import monkey

__all__ = ['patch_all']


def patch_all():
    """Patch the standard library with gevent, once per process."""
    if monkey.is_module_patched('socket'):
        return
    real = metadata.entry_points
    read = []

    def entry_points(**params):
        if not read:
            read.append(real())
        return read[0].select(**params)

    metadata.entry_points = entry_points
    try:
        monkey.patch_all()
    finally:
        metadata.entry_points = real
