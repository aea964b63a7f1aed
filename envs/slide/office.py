"""A warm headless LibreOffice that converts .pptx to PDF without a cold start per slide.

One soffice per worker listens on a private UNO pipe with its own user profile; a small bridge
process (envs/slide/uno_bridge.py, run by Debian's python3 where python3-uno lives) drives it.
Each conversion has a deadline: a LibreOffice that crashes, hangs or garbles the bridge is
killed (only the processes this object started, by pid) and restarted, and the caller gets an
OfficeError for that item. `cold_convert` is the baseline the benchmarks compare against
(`soffice --convert-to pdf`, a new process per file).

Never imports jax.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import select
import shutil
import subprocess
import tempfile
import time

import psutil

BRIDGE = pathlib.Path(__file__).with_name("uno_bridge.py")
UNO_PYTHON = "/usr/bin/python3"


class OfficeError(Exception):
    """A conversion failed (bad file, crash, hang); the office is usable again afterwards."""


def _check_tools(soffice: str, uno_python: str) -> None:
    if not shutil.which(soffice):
        raise FileNotFoundError(f"{soffice!r} not found: install libreoffice-impress (bash launch/setup.sh)")
    probe = subprocess.run([uno_python, "-c", "import uno"], capture_output=True)
    if probe.returncode != 0:
        raise FileNotFoundError(f"{uno_python} cannot import uno: install Debian's python3-uno "
                                f"(bash launch/setup.sh)")


class Office:
    """A long-lived soffice + UNO bridge. Not thread-safe: one per worker process."""

    def __init__(self, soffice: str = "soffice", uno_python: str = UNO_PYTHON,
                 start_timeout_s: float = 60.0, convert_timeout_s: float = 30.0):
        _check_tools(soffice, uno_python)
        self.soffice, self.uno_python = soffice, uno_python
        self.start_timeout_s, self.convert_timeout_s = start_timeout_s, convert_timeout_s
        self._soffice: subprocess.Popen | None = None
        self._bridge: subprocess.Popen | None = None
        self._profile: str | None = None
        self.restarts = 0

    def start(self) -> None:
        self._profile = tempfile.mkdtemp(prefix="sdpo_lo_profile_")
        pipe = f"sdpo_lo_{os.getpid()}_{int(time.monotonic() * 1000)}"
        self._soffice = subprocess.Popen(
            [self.soffice, "--headless", "--invisible", "--nologo", "--norestore", "--nodefault",
             "--nolockcheck", f"-env:UserInstallation=file://{self._profile}",
             f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self._bridge = subprocess.Popen(
            [self.uno_python, str(BRIDGE), pipe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True)
        reply = self._read(self.start_timeout_s)
        if not reply or not reply.get("ready"):
            self.close()
            raise OfficeError(f"LibreOffice did not start within {self.start_timeout_s:.0f}s")

    def _read(self, timeout_s: float) -> dict | None:
        ready, _, _ = select.select([self._bridge.stdout], [], [], timeout_s)
        if not ready:
            return None
        line = self._bridge.stdout.readline()
        try:
            return json.loads(line) if line else None
        except json.JSONDecodeError:
            return None

    def alive(self) -> bool:
        return all(p is not None and p.poll() is None for p in (self._soffice, self._bridge))

    def convert(self, src: str | os.PathLike, dst: str | os.PathLike) -> None:
        """Write `src` as a PDF at `dst`; raise OfficeError (after restarting) on any failure."""
        if not self.alive():
            self.close()
            self.start()
        self._bridge.stdin.write(json.dumps({"src": os.fspath(src), "dst": os.fspath(dst)}) + "\n")
        self._bridge.stdin.flush()
        reply = self._read(self.convert_timeout_s)
        if reply is None:
            self.restart()
            raise OfficeError(f"LibreOffice did not convert {pathlib.Path(src).name} within "
                              f"{self.convert_timeout_s:.0f}s (crashed or hung; restarted)")
        if not reply.get("ok"):
            if not self.alive():
                self.restart()
            raise OfficeError(f"LibreOffice could not convert {pathlib.Path(src).name}: {reply.get('error')}")

    def restart(self) -> None:
        self.restarts += 1
        self.close()
        self.start()

    def close(self) -> None:
        for proc in (self._bridge, self._soffice):
            if proc is None:
                continue
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(proc.pid)
                for child in parent.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        child.kill()
                parent.kill()
            with contextlib.suppress(Exception):
                proc.wait(5)
        self._bridge = self._soffice = None
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def __enter__(self) -> "Office":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cold_convert(src: str | os.PathLike, out_dir: str | os.PathLike, timeout_s: float = 60.0) -> pathlib.Path:
    """Baseline: a fresh `soffice --convert-to pdf` process (own profile) for one file."""
    with tempfile.TemporaryDirectory(prefix="sdpo_lo_cold_") as profile:
        subprocess.run(["soffice", "--headless", "--norestore", "--nolockcheck",
                        f"-env:UserInstallation=file://{profile}", "--convert-to", "pdf",
                        "--outdir", os.fspath(out_dir), os.fspath(src)],
                       capture_output=True, timeout=timeout_s, check=True)
    return pathlib.Path(out_dir) / (pathlib.Path(src).stem + ".pdf")
