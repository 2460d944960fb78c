"""Sphinx configuration for the Vaurien documentation."""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, '..', 'vaurien', '__init__.py'),
          encoding='utf-8') as fh:
    release = re.search(r"^__version__ = '([^']+)'", fh.read(), re.M).group(1)

project = 'Vaurien'
author = 'The Vaurien developers'
copyright = '2026, The Vaurien developers'
version = release
extensions = []
exclude_patterns = ['_build']
html_theme = 'alabaster'
master_doc = 'index'
