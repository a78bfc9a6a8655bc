"""Where the CLI finds its profile and relay: command-line options, else the environment, else ``config.json``.

``<data dir>/config.json`` (optional) may hold ``{"profile": "/path", "transport": "nats://host:4222"}``.
No transport anywhere means the machine's embedded relay.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine.messenger import default_data_dir, default_profile_dir

PROFILE_ENV = "SOTTOVOCE_PROFILE"
TRANSPORT_ENV = "SOTTOVOCE_TRANSPORT"
CONFIG_FILE = "config.json"


class ConfigError(Exception):
    """The configuration file cannot be used (reported as one line)."""


def _config() -> dict[str, str]:
    path = default_data_dir() / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def profile_dir(option: str | None) -> Path:
    chosen = option or os.environ.get(PROFILE_ENV) or _config().get("profile")
    return Path(chosen).expanduser() if chosen else default_profile_dir()


def transport_url(option: str | None) -> str | None:
    return option or os.environ.get(TRANSPORT_ENV) or _config().get("transport") or None
