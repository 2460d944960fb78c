"""Packaging for Vaurien, the chaos TCP proxy."""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read(*parts):
    with open(os.path.join(HERE, *parts), encoding='utf-8') as fh:
        return fh.read()


VERSION = re.search(r"^__version__ = '([^']+)'",
                    read('vaurien', '__init__.py'), re.M).group(1)

TESTS_REQUIRE = [
    'pytest>=7',
    'pytest-timeout>=2',
    'pytest-xdist>=3',     # tox.ini runs the tests in parallel (-n auto)
    'sphinx',
    'requests',
    # client libraries (and one server) of the protocol tests
    'redis>=5',
    'pymemcache>=4',
    'PyMySQL>=1.1',
    'aiosmtpd>=1.4',
    'urllib3>=2',
    'prometheus_client',   # its parser of the metrics text format
    'statsd',              # the [statsd] extra, tested with a UDP listener
    'toxiproxy-python',    # a real Toxiproxy client, driving vaurien-toxiproxy
]

setup(
    name='vaurien',
    version=VERSION,
    description='The chaos TCP proxy',
    long_description=read('README.rst'),
    long_description_content_type='text/x-rst',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['vaurien', 'vaurien.*']),
    include_package_data=True,
    install_requires=[
        'gevent>=24.2',
    ],
    extras_require={
        'test': TESTS_REQUIRE,
        'statsd': ['statsd>=3.3'],
    },
    entry_points={
        'console_scripts': [
            'vaurien = vaurien.run:main',
            'vaurienctl = vaurien.ctl:main',
            'vaurien-toxiproxy = vaurien.toxiproxy_server:main',
        ],
        'pytest11': [
            'vaurien = vaurien.pytest_plugin',
        ],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3 :: Only',
        'Topic :: Software Development :: Testing',
        'Topic :: System :: Networking',
    ],
)
