"""A warm headless LibreOffice, inside bubblewrap, that renders .pptx decks to PDF and PNG pages.

One office sandbox per worker (`envs.bwrap`: own PID, network and mount namespaces, read-only
system, a private /tmp): the bridge (envs/slide/uno_bridge.py, run by Debian's python3 where
python3-uno lives) starts soffice there with its profile and its UNO pipe in that /tmp, so no
program, page or other sandbox can see or reach the pipe, and LibreOffice sees no host file and
no network (a linked picture or URL in a deck resolves to nothing; the env refuses such decks
before they get here, `envs.slide.deck_guard`). Decks go in and PDF + PNG pages come out over
the bridge's stdin/stdout: nothing is written on the host, and when the worker dies, however it
dies, LibreOffice and its files die with the sandbox (`--die-with-parent`).

Each render has a deadline: an office that crashes, hangs or garbles the bridge is killed and
restarted, and the caller gets an OfficeError for that item. `cold_render` is the baseline the
benchmarks compare against (`soffice --convert-to pdf`, a new process per file, on the host).
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
import uuid

from envs import bwrap

BRIDGE = pathlib.Path(__file__).with_name("uno_bridge.py")
UNO_PYTHON = "/usr/bin/python3"
DPI = 96  # 13.333 x 7.5 in -> 1280 x 720 px, the AeSlides canvas
TMP_BYTES = 1 << 30


class OfficeError(Exception):
    """A render failed (bad file, crash, hang); the office is usable again afterwards."""


def _check_tools(soffice: str, uno_python: str) -> None:
    if not shutil.which(soffice):
        raise FileNotFoundError(f"{soffice!r} not found: install libreoffice-impress (bash launch/setup.sh)")
    probe = subprocess.run([uno_python, "-c", "import uno"], capture_output=True)
    if probe.returncode != 0:
        raise FileNotFoundError(f"{uno_python} cannot import uno: install Debian's python3-uno "
                                f"(bash launch/setup.sh)")
    reason = bwrap.unavailable_reason()
    if reason is not None:
        raise FileNotFoundError(f"LibreOffice runs only inside the bubblewrap sandbox: {reason}")


class Office:
    """A long-lived sandboxed soffice + UNO bridge. Not thread-safe: one per worker process."""

    def __init__(self, soffice: str = "soffice", uno_python: str = UNO_PYTHON,
                 start_timeout_s: float = 60.0, convert_timeout_s: float = 30.0):
        _check_tools(soffice, uno_python)
        self.uno_python = uno_python
        self.start_timeout_s, self.convert_timeout_s = start_timeout_s, convert_timeout_s
        self._bridge: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> None:
        pipe = f"sdpo_lo_{uuid.uuid4().hex}"
        argv = bwrap.command([self.uno_python, str(BRIDGE), pipe], read_only=[str(BRIDGE.parent)],
                             env={"HOME": "/tmp", "TMPDIR": "/tmp", "PATH": "/usr/bin:/bin",
                                  "LANG": "C.UTF-8"}, tmp_bytes=TMP_BYTES)
        self._bridge = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        reply = self._read_head(self.start_timeout_s)
        if not reply or not reply.get("ready"):
            self.close()
            raise OfficeError(f"LibreOffice did not start within {self.start_timeout_s:.0f}s")

    def _read_head(self, timeout_s: float) -> dict | None:
        stream = self._bridge.stdout
        ready, _, _ = select.select([stream], [], [], timeout_s)
        if not ready:
            return None
        line = stream.readline()
        try:
            reply = json.loads(line) if line else None
        except json.JSONDecodeError:
            return None
        return reply if isinstance(reply, dict) else None

    def alive(self) -> bool:
        return self._bridge is not None and self._bridge.poll() is None

    def render(self, deck: bytes, pages: int) -> tuple[bytes, list[bytes]]:
        """(PDF, PNG per page up to `pages`) of a deck; OfficeError (after a restart) on failure."""
        if not self.alive():
            self.close()
            self.start()
        try:
            head = {"deck": len(deck), "pages": pages, "dpi": DPI}
            self._bridge.stdin.write(json.dumps(head).encode() + b"\n" + deck)
            self._bridge.stdin.flush()
        except OSError:
            self.restart()
            raise OfficeError("LibreOffice's bridge died before the deck was sent "
                              "(restarted)") from None
        reply = self._read_head(self.convert_timeout_s)
        if reply is None:
            self.restart()
            raise OfficeError(f"LibreOffice did not render the deck within "
                              f"{self.convert_timeout_s:.0f}s (crashed or hung; restarted)")
        if not reply.get("ok"):
            if not self.alive():
                self.restart()
            raise OfficeError(f"LibreOffice could not render the deck: {reply.get('error')}")
        pdf = self._bridge.stdout.read(int(reply["pdf"]))
        pngs = [self._bridge.stdout.read(int(size)) for size in reply["pngs"]]
        return pdf, pngs

    def restart(self) -> None:
        self.restarts += 1
        self.close()
        self.start()

    def close(self) -> None:
        proc, self._bridge = self._bridge, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 9)  # bwrap, and with its PID namespace everything inside
        with contextlib.suppress(Exception):
            proc.wait(5)
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()

    def __enter__(self) -> "Office":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cold_render(deck: bytes, pages: int, timeout_s: float = 60.0) -> tuple[bytes, list[bytes]]:
    """Baseline: a fresh `soffice --convert-to pdf` process (own profile) for one deck, then
    pdftoppm, on the host."""
    with tempfile.TemporaryDirectory(prefix="sdpo_lo_cold_") as tmp:
        src = pathlib.Path(tmp) / "deck.pptx"
        src.write_bytes(deck)
        subprocess.run(["soffice", "--headless", "--norestore", "--nolockcheck",
                        f"-env:UserInstallation=file://{tmp}/profile", "--convert-to", "pdf",
                        "--outdir", tmp, str(src)], capture_output=True, timeout=timeout_s,
                       check=True)
        subprocess.run(["pdftoppm", "-r", str(DPI), "-png", "-f", "1", "-l", str(pages),
                        f"{tmp}/deck.pdf", f"{tmp}/page"], check=True, capture_output=True,
                       timeout=60)
        return ((pathlib.Path(tmp) / "deck.pdf").read_bytes(),
                [p.read_bytes() for p in sorted(pathlib.Path(tmp).glob("page-*.png"))])
