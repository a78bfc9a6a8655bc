"""PyInstaller runtime hook of the one-folder app: make the bundled native helpers findable.

* ``nats-server`` (the embedded relay) sits in ``<bundle>/bin``; the engine looks in the scripts folder of the
  running Python and then on ``PATH`` (``engine.transport.relay.find_nats_server``), so ``bin`` goes first on
  ``PATH``.
* ``libzbar`` (QR decoding) sits in the bundle; pyzbar asks ``ctypes.util.find_library("zbar")``, which on
  Linux only consults the system's linker cache, so that one name is answered from the bundle first.
"""

import ctypes.util
import os
import sys

_BUNDLE = getattr(sys, "_MEIPASS", os.path.dirname(os.path.abspath(sys.executable)))
_BIN = os.path.join(_BUNDLE, "bin")
if os.path.isdir(_BIN):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")

_system_find_library = ctypes.util.find_library


def _find_library(name: str) -> str | None:
    if name == "zbar":
        for candidate in ("libzbar.so.0", "libzbar.0.dylib", "libzbar-64.dll"):
            path = os.path.join(_BUNDLE, candidate)
            if os.path.isfile(path):
                return path
    return _system_find_library(name)


ctypes.util.find_library = _find_library
