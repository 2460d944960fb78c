"""One registry for every kind of plugin usable by name (handlers, protocols).

A :class:`Registry` of one *kind* (``'handler'``, ``'protocol'``) knows its
plugins from four sources, with the same rules and the same messages for
every kind:

* the built-ins: every class of the kind's package (``vaurien.handlers``,
  ``vaurien.protocols``) that subclasses the kind's base class and sets its
  own ``name``, found by importing each module of the package, so adding a
  built-in is adding a module;
* the kind's entry-point group (``vaurien.handlers``, ``vaurien.protocols``),
  so that an installed package can add plugins;
* ``[KIND:NAME]`` sections of the INI file with ``callable = dotted.path``
  (:meth:`Registry.add_sections`);
* dotted paths given directly (``pkg.mod.Class`` or ``pkg.mod:Class``).

Two plugins with one name, whatever their sources, is an error that names
both. Errors are :class:`RegistryError` (a :class:`~vaurien.config.ConfigError`,
so one line for the user), or the subclass the registry is given.
"""
import importlib
import inspect
import os
import pkgutil
import sys
import time
from importlib import metadata

from vaurien.config import ConfigError

__all__ = ['RegistryError', 'Registry', 'Entry', 'load_dotted',
           'discover_builtins']


#: How long the installed packages' entry points, once read, are taken as
#: they are (seconds): start-up builds several registries in a row, and
#: each reading goes through every installed distribution's metadata.
ENTRY_POINTS_FRESH = 2.0
_read = [None, -ENTRY_POINTS_FRESH]     # [EntryPoints, when read]


def installed_entry_points(group):
    """The installed packages' entry points of *group*, read anew at most
    every :data:`ENTRY_POINTS_FRESH` seconds (a package installed while the
    proxy runs is seen by the next change made after that)."""
    now = time.monotonic()
    if now - _read[1] >= ENTRY_POINTS_FRESH:
        _read[0] = metadata.entry_points()
        _read[1] = now
    return _read[0].select(group=group)


class RegistryError(ConfigError, ValueError):
    """A plugin cannot be found, loaded or configured (one line)."""


def load_dotted(path, kind='handler', error=RegistryError):
    """Import ``pkg.mod.Attr`` or ``pkg.mod:Attr`` and return the attribute.

    The current directory is searched too, so a handler in ``./myhandlers.py``
    is found as ``myhandlers.Class``. Raises *error* saying which module
    or attribute is missing, and why; *kind* names what the object is for.
    """
    if ':' in path:
        module_name, _, attr_path = path.partition(':')
    else:
        module_name, _, attr_path = path.rpartition('.')
    if not module_name or not attr_path:
        raise error('%r is not a dotted path like pkg.module.Class' % path)
    if os.getcwd() not in sys.path and '' not in sys.path:
        sys.path.append(os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise error('cannot load %r: no module named %r'
                    % (path, missing)) from None
    except Exception as exc:   # the user's module raised while importing
        raise error('cannot load %r: importing %r failed: %s: %s'
                    % (path, module_name, type(exc).__name__, exc)) from None
    done = module_name
    for attr in attr_path.split('.'):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise error('cannot load %r: %r has no attribute %r'
                        % (path, done, attr)) from None
        done = '%s.%s' % (done, attr)
    if not callable(obj):
        raise error('cannot use %r as a %s: it is a %s, not a class or a '
                    'callable' % (path, kind, type(obj).__name__))
    return obj


_DISCOVERED = {}


def discover_builtins(package, base):
    """``{name: class}`` of the built-ins of *package* (a module object).

    Every module of the package is imported; a class defined there that
    subclasses *base* and sets ``name`` in its own body is a built-in.
    Sorted by name. Two built-ins with one name raise RegistryError.
    """
    key = (package.__name__, base)
    found = _DISCOVERED.get(key)
    if found is not None:
        return found
    found = {}
    for info in sorted(pkgutil.iter_modules(package.__path__),
                       key=lambda info: info.name):
        if info.name.startswith('_'):
            continue
        module = importlib.import_module('%s.%s' % (package.__name__,
                                                    info.name))
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (cls is base or not issubclass(cls, base)
                    or cls.__module__ != module.__name__
                    or 'name' not in vars(cls)):
                continue
            if cls.name in found:
                raise RegistryError('two built-ins named %r: %s and %s'
                                    % (cls.name, _where(found[cls.name]),
                                       _where(cls)))
            found[cls.name] = cls
    found = _DISCOVERED[key] = dict(sorted(found.items()))
    return found


def _where(cls):
    return '%s:%s' % (cls.__module__, cls.__qualname__)


class Entry:
    """One plugin known by name: where it comes from and what it is.

    *target* is the class (or, for handlers, a plain callable) once loaded;
    *path* is the dotted path it is loaded from on first use; *defaults* are
    the raw option values of its INI section. A ``raw`` entry (the protocol
    ``tcp``) has no target at all: it stands for "no plugin", and its
    *description* is its documentation.
    """

    def __init__(self, registry, name, source, target=None, path=None,
                 defaults=None, raw=False, description=None, settings=None):
        self.registry = registry
        self.name = name
        self.source = source     # for messages: "built-in ...", "[handler:x] in f.ini"
        self.target = target
        self.path = path
        self.defaults = dict(defaults or {})
        self.raw = raw
        self.description = description
        # settings handed to the plugin as they are, besides its checked
        # options (an INI section's keys the plugin does not declare)
        self.settings = dict(settings or {})

    @property
    def label(self):
        """How messages name this plugin: ``delay``, ``protocol http``."""
        return self.registry.label % self.name

    def load(self):
        """The class or callable (None for a raw entry); loaded once."""
        if self.target is None and not self.raw:
            registry = self.registry
            target = load_dotted(self.path, registry.kind, registry.error)
            if registry.on_load is not None:
                target = registry.on_load(target, self.path)
            if registry.base_required and not (
                    isinstance(target, type)
                    and issubclass(target, registry.base)):
                raise registry.error('%s: %r is not a subclass of %s.%s'
                                     % (self.source, self.path,
                                        registry.package.__name__,
                                        registry.base.__name__))
            self.target = target
        return self.target

    @property
    def is_class(self):
        return isinstance(self.load(), type)

    @property
    def options(self):
        """The declared options ``{name: (description, type, default)}``."""
        target = self.load()
        if isinstance(target, type):
            declared = getattr(target, 'options', None)
            if isinstance(declared, dict):
                return declared
        return {}

    @property
    def doc(self):
        """The plugin's documentation (its docstring), stripped."""
        target = self.load()
        if target is None:
            return self.description or ''
        return (getattr(target, '__doc__', None) or '').strip()

    def check_options(self, values):
        """Convert raw option values for this plugin (the registry's error
        if one is bad).

        The options the registry adds to every plugin of its kind (a
        handler's ``direction``) are checked here and kept in the result.
        """
        registry = self.registry
        values = dict(values)
        extra = {}
        for option, spec in registry.extra_options.items():
            if option in values:
                raw = values.pop(option)
                try:
                    extra[option] = spec[1](raw)
                except ValueError as exc:
                    raise registry.error('%s: option %r expects %s, got %r'
                                         % (self.label, option, exc, raw)) \
                        from None
        result = self._check_declared(values)
        result.update(extra)
        return result

    def _check_declared(self, values):
        registry = self.registry
        target = self.load()
        if target is None:
            if values:
                raise registry.error('%s takes no options, got %s'
                                     % (self.label, ', '.join(sorted(values))))
            return {}
        if not isinstance(target, type):
            if values:
                raise registry.error(
                    '%s: a plain callable takes no options, got %s'
                    % (self.label, ', '.join(sorted(values))))
            return {}
        declared = self.options
        unknown = sorted(set(values) - set(declared))
        if unknown:
            # listed here rather than by the class, which does not know
            # the options the registry adds to every plugin of its kind
            valid = sorted(set(declared) | set(registry.extra_options))
            raise registry.error('%s: unknown option %r (valid options: %s)'
                                 % (self.label, unknown[0],
                                    ', '.join(valid) or 'none'))
        checker = getattr(target, 'check_options', None)
        try:
            if checker is not None:
                return checker(values, self.name)
            return registry.base.check_options.__func__(target, values,
                                                        self.name)
        except ValueError as exc:
            raise registry.error(str(exc)) from None

    def build(self, options, proxy):
        """An instance (or the plain callable) with already checked options.

        The options the registry adds (a handler's ``direction``) are not
        passed on: the engine applies them. A raw entry builds None.
        """
        settings = dict(self.settings)
        settings.update((k, v) for k, v in options.items()
                        if k not in self.registry.extra_options)
        options = settings
        target = self.load()
        if not isinstance(target, type):
            return target
        try:
            return target(settings=options, proxy=proxy)
        except Exception as exc:
            raise self.registry.error('%s: could not be created: %s: %s'
                                      % (self.label, type(exc).__name__,
                                         exc)) from None

    def __repr__(self):
        return '<Entry %s %r from %s>' % (self.registry.kind, self.name,
                                          self.source)


class Registry:
    """Every plugin of one kind usable by name, from every source.

    *kind* names the plugins in messages and INI sections (``handler``:
    ``[handler:NAME]``); *group* is the entry-point group; *package* (a
    module) holds the built-ins, subclasses of *base*. *error* is the
    exception class raised (a RegistryError subclass). *label* formats a
    plugin's name at the head of its messages (``'%s'`` gives
    ``delay: ...``, ``'protocol %s'`` gives ``protocol http: ...``).
    *extra_options* are options every plugin of the kind takes without
    declaring them (``{name: (description, converter, default)}``).
    *base_required*: a plugin must subclass *base* (else plain callables
    are accepted too). *on_load*, when given, is called as ``on_load(target,
    path)`` with every plugin loaded from a dotted path and returns what to
    use instead (an adapted class), or raises *error* (a class found wrong
    before anything starts). *raw*: ``{name: description}`` of names that stand
    for "no plugin" (the protocol ``tcp``). With *entry_points* false the
    installed packages are not looked at.
    """

    def __init__(self, kind, group, package, base, error=RegistryError,
                 label='%s', extra_options=None, base_required=False,
                 raw=None, entry_points=True, on_load=None):
        self.kind = kind
        self.group = group
        self.package = package
        self.base = base
        self.error = error
        self.label = label
        self.extra_options = dict(extra_options or {})
        self.base_required = base_required
        self.on_load = on_load
        self._entries = {}
        for name, description in (raw or {}).items():
            self._entries[name] = Entry(self, name, 'built-in %s' % name,
                                        raw=True, description=description)
        for name, cls in self.builtins().items():
            self._entries[name] = Entry(self, name, 'built-in %s' % _where(cls),
                                        target=cls)
        if entry_points:
            for ep in installed_entry_points(group):
                self.add_path(ep.name, ep.value,
                              'entry point %s = %s (%s)'
                              % (ep.name, ep.value,
                                 ep.dist.name if ep.dist else '?'))

    def builtins(self):
        """``{name: class}`` of the built-ins, sorted by name."""
        return discover_builtins(self.package, self.base)

    def _check_free(self, name, source):
        if name in self._entries:
            raise self.error('two %ss named %r: %s and %s'
                             % (self.kind, name, self._entries[name].source,
                                source))

    def add_path(self, name, path, source, defaults=None):
        """Register *name* as the plugin at dotted *path* (loaded when
        first used)."""
        self._check_free(name, source)
        entry = self._entries[name] = Entry(self, name, source, path=path,
                                            defaults=defaults)
        return entry

    def add(self, name, target, source):
        """Register an already imported class or callable."""
        self._check_free(name, source)
        entry = self._entries[name] = Entry(self, name, source, target=target)
        return entry

    def add_sections(self, sections, ini_path):
        """Register the ``[KIND:NAME]`` sections of an INI file.

        *sections* is ``{NAME: {key: raw value}}``. A section with
        ``callable`` adds the plugin NAME; one without it gives options to
        an already known NAME (or a dotted path), else it is an error.
        """
        for name, values in sections.items():
            if 'callable' in values:
                self.add_path(name, values['callable'], '[%s:%s] in %s'
                              % (self.kind, name, ini_path))
            elif name not in self and '.' not in name and ':' not in name:
                raise self.error('%s: [%s:%s] has no "callable" and %r is not '
                                 'a known %s (known: %s)'
                                 % (ini_path, self.kind, name, name,
                                    self.kind, ', '.join(self.names())))

    def rename(self, old, new):
        """The plugin registered as *old* is known as *new* instead (what
        was registered as *new* is forgotten); the new Entry."""
        entry = self._entries.pop(old)
        renamed = self._entries[new] = Entry(
            self, new, entry.source, target=entry.load(), path=entry.path,
            defaults=entry.defaults, settings=entry.settings)
        return renamed

    def pass_settings(self, name, settings):
        """Hand *settings* (``{key: raw value}``) to the plugin *name* as
        they are, besides its checked options; the new Entry."""
        entry = self.get(name)
        merged = dict(entry.settings)
        merged.update(settings)
        renamed = self._entries[name] = Entry(
            self, name, entry.source, target=entry.load(), path=entry.path,
            defaults=entry.defaults, settings=merged)
        return renamed

    def source_of(self, name):
        """Where the plugin *name* comes from (for messages), or None."""
        entry = self._entries.get(name)
        return entry.source if entry is not None else None

    def __contains__(self, name):
        return name in self._entries

    def names(self):
        """Every registered name, sorted."""
        return sorted(self._entries)

    def get(self, name):
        """The loaded Entry for *name*: a registered name or a dotted path."""
        entry = self._entries.get(name)
        if entry is not None:
            entry.load()
            return entry
        if '.' in name or ':' in name:
            entry = Entry(self, name, 'dotted path %s' % name, path=name)
            entry.load()
            self._entries[name] = entry
            return entry
        raise self.error('unknown %s %r (known: %s; or a dotted path like '
                         'pkg.module.Class)'
                         % (self.kind, name, ', '.join(self.names())))
