"""``from vaurien.behaviors.dummy import Dummy``, as 1.x behaviors wrote it."""
from vaurien.behaviors import Dummy

__all__ = ['Dummy']
