"""Checked option types for handler ``options``.

A handler declares ``(description, type, default)`` per option. Besides the
plain ``bool``, ``int``, ``float`` and ``str``, a type can be one of these
converters, which also check a range, so that a wrong value is refused at
start-up (or by the control API) with a message naming the option::

    options = {'sleep': ("Delay in seconds", Number(min=0), 1.0)}
"""
from vaurien.config import parse_float, parse_int

__all__ = ['Number', 'Integer']


class _Bounded:
    """A number with optional bounds; ``str()`` gives its docs name."""

    base_name = 'number'
    parse = staticmethod(parse_float)

    def __init__(self, min=None, max=None, min_exclusive=False):
        self.min = min
        self.max = max
        self.min_exclusive = min_exclusive

    @property
    def type_name(self):
        parts = []
        if self.min is not None:
            parts.append('%s %s' % ('>' if self.min_exclusive else '>=',
                                    self.min))
        if self.max is not None:
            parts.append('<= %s' % self.max)
        if not parts:
            return self.base_name
        return '%s %s' % (self.base_name, ' and '.join(parts))

    def __call__(self, value):
        number = self.parse(value)
        low_ok = (self.min is None or number > self.min
                  or (number == self.min and not self.min_exclusive))
        if not low_ok or (self.max is not None and number > self.max):
            raise ValueError('a %s' % self.type_name)
        return number

    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, self.type_name)

    def __str__(self):
        return self.type_name


class Number(_Bounded):
    """A number (fractions allowed) within optional bounds."""


class Integer(_Bounded):
    """A whole number within optional bounds."""
    base_name = 'integer'
    parse = staticmethod(parse_int)
