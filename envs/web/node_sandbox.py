"""Playwright's driver (Node.js) and the Chromium it launches, inside bubblewrap.

`envs.web.browser.Browser` points Playwright at the shim `envs/web/sandboxed-node` (through
PLAYWRIGHT_NODEJS_PATH, for the launch only); the shim runs `python -m envs.web.node_sandbox
ARGS`, which replaces itself with `bwrap ... node ARGS` (`envs.bwrap`): the driver and every
Chromium process live in their own PID, network and mount namespaces with a private /tmp.
So a page that escapes the renderer finds no host files and no host network (WebRTC or
anything else reaches only the sandbox's own loopback), and when the worker dies, however it
dies, the whole browser and its profile folders die with it (`--die-with-parent`, the PID
namespace, the tmpfs). Pages still come only from Playwright's request interceptor, over the
driver's pipes. Never imports jax.
"""
from __future__ import annotations

import os
import pathlib
import sys

from envs import bwrap

TMP_BYTES = 2 << 30  # Chromium's shared memory lives in /tmp (--disable-dev-shm-usage)
_PASSED_ENV = ("PW_", "PLAYWRIGHT_", "DEBUG")


def driver_node() -> pathlib.Path:
    """The Node.js binary bundled with the Playwright package."""
    import playwright
    return pathlib.Path(playwright.__file__).parent / "driver" / "node"


def sandboxed_command(args: list[str]) -> list[str]:
    node = driver_node()
    env = {"HOME": "/tmp", "TMPDIR": "/tmp", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    env.update({k: v for k, v in os.environ.items()
                if k.startswith(_PASSED_ENV) and k != "PLAYWRIGHT_NODEJS_PATH"})
    return bwrap.command([str(node), *args], read_only=[str(node.parent)], env=env,
                         tmp_bytes=TMP_BYTES)


def main() -> None:
    argv = sandboxed_command(sys.argv[1:])
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
