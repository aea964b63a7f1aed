"""One long-lived Chromium per worker, a fresh isolated context per page, hostile pages contained.

Pages arrive as strings and are served from a virtual origin by a request interceptor; every
other request is aborted (a second wall: Chromium's host resolver maps every name to nothing).
Local stand-ins answer the few resources benchmark pages expect: the Design2Code image
placeholder `rick.jpg` (also drawn for any other blocked image, so layouts keep their pictures),
and Tailwind's CDN script and the Material Icons font (served from node_modules). Script-initiated
network calls and navigations away are recorded as violations; dialogs are dismissed; loading
has a time budget and every later operation a time limit. A page that hangs the renderer is
abandoned with its context; if the browser itself stops answering it is killed (only the
processes this object started) and relaunched, so the worker keeps serving.

Uses Playwright's async API on a private event loop behind a synchronous facade so every call
can be bounded by asyncio.wait_for (the sync API cannot time-limit page.evaluate).
Never imports jax.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import os
import pathlib
import shutil
import time
from collections.abc import Iterator
from typing import Any

import psutil

PAGE_ORIGIN = "http://sdpo.page"
PAGE_URL = PAGE_ORIGIN + "/index.html"
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE sdpo.page",
                  "--font-render-hinting=none", "--hide-scrollbars")
# Script-initiated traffic: the page tried to talk to the network (a violation, not a missing asset).
ACTIVE_RESOURCE_TYPES = frozenset({"fetch", "xhr", "websocket", "eventsource", "ping", "other"})
_NODE_MODULES = pathlib.Path(__file__).resolve().parents[2] / "node_modules"
LOCAL_ASSETS = {  # URL prefix -> (file under node_modules, content type); see package.json
    "https://cdn.tailwindcss.com": ("@tailwindcss/browser/dist/index.global.js", "application/javascript"),
    "https://fonts.googleapis.com/icon?family=Material+Icons": ("material-icons/iconfont/filled.css", "text/css"),
    "https://fonts.googleapis.com/material-icons.woff2": ("material-icons/iconfont/material-icons.woff2", "font/woff2"),
}


class PageError(Exception):
    """A page could not be rendered or judged; `kind` says why (timeout, crash, network, ...)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclasses.dataclass
class BrowserConfig:
    """Limits for one page; the defaults suit Design2Code-sized pages on a shared 2-core machine."""

    executable: str = "/usr/bin/chromium"
    load_budget_s: float = 8.0      # parse + scripts until the load event
    settle_s: float = 0.05          # after load + fonts, then one frame (Tailwind, late layout)
    op_timeout_s: float = 20.0      # any single later operation (extract, screenshot)
    max_source_chars: int = 2_000_000
    launch_timeout_s: float = 30.0

    def __post_init__(self):
        if not (os.path.isfile(self.executable) or shutil.which(self.executable)):
            raise FileNotFoundError(
                f"Chromium not found at {self.executable!r}: install Debian's chromium "
                f"(bash launch/setup.sh) or set BrowserConfig.executable")


def placeholder_jpeg() -> bytes:
    """The stand-in for Design2Code's `rick.jpg`: a deterministic, textured, mid-tone JPEG."""
    import numpy as np
    from PIL import Image
    yy, xx = np.mgrid[0:240, 0:320]
    rgb = np.stack([90 + 60 * np.sin(xx / 23.0), 110 + 50 * np.cos(yy / 17.0),
                    150 + 40 * np.sin((xx + yy) / 31.0)], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


@dataclasses.dataclass
class PageLog:
    """What a page did besides rendering: blocked requests, violations, dialogs."""

    blocked: list[str] = dataclasses.field(default_factory=list)
    violations: list[str] = dataclasses.field(default_factory=list)
    dialogs: int = 0


class Page:
    """An open page in its own context; every call is time-limited and raises PageError."""

    def __init__(self, browser: "Browser", page: Any, log: PageLog):
        self._browser = browser
        self._page = page
        self.log = log

    def evaluate(self, expression: str, arg: Any = None, timeout_s: float | None = None) -> Any:
        return self._browser._run(self._page.evaluate(expression, arg), "evaluate", timeout_s)

    def screenshot(self, full_page: bool = False, max_height: int = 8192) -> bytes:
        """PNG of the viewport, or of the whole page up to max_height pixels."""
        clip = None
        if full_page:
            width, height = self.evaluate(
                "() => [document.documentElement.clientWidth,"
                " Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)]")
            clip = {"x": 0, "y": 0, "width": max(1, width), "height": max(1, min(height, max_height))}
        return self._browser._run(
            self._page.screenshot(type="png", clip=clip, full_page=full_page, animations="disabled",
                                  caret="hide", timeout=self._browser.config.op_timeout_s * 1000),
            "screenshot", None)

    def set_viewport(self, width: int, height: int) -> None:
        self._browser._run(self._page.set_viewport_size({"width": width, "height": height}), "resize", None)


class Browser:
    """A Chromium that outlives pages. Not thread-safe: one per worker process."""

    def __init__(self, config: BrowserConfig | None = None):
        self.config = config or BrowserConfig()
        self._loop = asyncio.new_event_loop()
        self._pw = None
        self._browser = None
        self._own_pids: set[int] = set()
        self._placeholder = placeholder_jpeg()
        self._assets: dict[str, tuple[bytes, str]] = {}
        for prefix, (rel, ctype) in LOCAL_ASSETS.items():
            path = _NODE_MODULES / rel
            if path.is_file():
                self._assets[prefix] = (path.read_bytes(), ctype)
        self.restarts = 0

    # ---- lifecycle -------------------------------------------------------------------------
    def _start(self) -> None:
        from playwright.async_api import async_playwright
        before = {p.pid for p in psutil.Process().children(recursive=True)}

        async def launch():
            pw = await async_playwright().start()
            browser = await pw.chromium.launch(executable_path=self.config.executable,
                                               args=list(CHROMIUM_FLAGS), headless=True)
            return pw, browser

        self._pw, self._browser = self._loop.run_until_complete(
            asyncio.wait_for(launch(), self.config.launch_timeout_s))
        self._own_pids = {p.pid for p in psutil.Process().children(recursive=True)} - before

    def ensure_started(self) -> None:
        if self._browser is None or not self._browser.is_connected():
            self.close()
            self._start()

    def restart(self) -> None:
        """Kill this browser (and its Playwright driver) and launch a fresh one."""
        self.restarts += 1
        self.close()
        self._start()

    def close(self) -> None:
        if self._browser is not None:
            try:
                self._loop.run_until_complete(asyncio.wait_for(self._shutdown(), 10))
            except Exception:  # a hung browser: fall through to killing our own processes
                pass
        for pid in self._own_pids:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                for child in proc.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        child.kill()
                proc.kill()
        self._own_pids = set()
        self._browser = None
        self._pw = None

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self._browser.close()
        with contextlib.suppress(Exception):
            await self._pw.stop()

    def __enter__(self) -> "Browser":
        self.ensure_started()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- pages -------------------------------------------------------------------------------
    def _run(self, coro, what: str, timeout_s: float | None):
        timeout = self.config.op_timeout_s if timeout_s is None else timeout_s
        try:
            return self._loop.run_until_complete(asyncio.wait_for(coro, timeout))
        except asyncio.TimeoutError:
            raise PageError("timeout", f"page {what} did not finish within {timeout:.0f}s "
                                       f"(a script loop, dialog storm or an enormous page)") from None
        except PageError:
            raise
        except Exception as exc:  # Playwright errors: crashed renderer, closed target, bad script
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            kind = "crash" if "crash" in message.lower() or "closed" in message.lower() else "page"
            raise PageError(kind, f"page {what} failed: {message}") from None

    @contextlib.contextmanager
    def open(self, html: str, width: int, height: int) -> Iterator[Page]:
        """Load `html` at a fixed viewport in a fresh context; the context dies on exit."""
        if len(html) > self.config.max_source_chars:
            raise PageError("too_large", f"page source has {len(html)} characters, above the "
                                         f"limit of {self.config.max_source_chars}")
        self.ensure_started()
        log = PageLog()
        context = page = None
        healthy = True
        try:
            try:
                context, page = self._run(self._new_page(html, width, height, log), "setup", 15)
            except PageError:  # the browser died between pages: relaunch once, then give up
                self.restart()
                context, page = self._run(self._new_page(html, width, height, log), "setup", 15)
            t0 = time.monotonic()
            self._run(page.goto(PAGE_URL, wait_until="load", timeout=0), "load",
                      self.config.load_budget_s)
            remaining = max(1.0, self.config.load_budget_s - (time.monotonic() - t0))
            self._run(page.evaluate(
                "(ms) => Promise.race([document.fonts.ready, new Promise(r => setTimeout(r, 2000))])"
                ".then(() => new Promise(r => setTimeout(() => requestAnimationFrame(() => r()), ms)))",
                int(self.config.settle_s * 1000)), "settle", remaining)
            yield Page(self, page, log)
        except PageError as err:
            healthy = err.kind not in ("timeout", "crash")
            raise
        finally:
            if context is not None:
                try:
                    self._run(context.close(), "close", 10)
                except PageError:
                    healthy = False
            if not healthy and not self._responsive():
                self.restart()

    def _responsive(self) -> bool:
        try:
            return (self._browser is not None and self._browser.is_connected()
                    and self._run(self._probe(), "probe", 5))
        except PageError:
            return False

    async def _probe(self) -> bool:
        context = await self._browser.new_context()
        await context.close()
        return True

    async def _new_page(self, html: str, width: int, height: int, log: PageLog):
        context = await self._browser.new_context(
            viewport={"width": width, "height": height}, device_scale_factor=1,
            service_workers="block", accept_downloads=False, reduced_motion="reduce")
        body = html.encode("utf-8")
        served = {"page": False}

        async def route(route):
            request = route.request
            url = request.url
            if url == PAGE_URL and not served["page"]:
                served["page"] = True
                return await route.fulfill(status=200, body=body,
                                           headers={"content-type": "text/html; charset=utf-8"})
            if url.split("?")[0].endswith("/rick.jpg") and url.startswith(PAGE_ORIGIN):
                return await route.fulfill(status=200, body=self._placeholder,
                                           headers={"content-type": "image/jpeg"})
            for prefix, (asset, ctype) in self._assets.items():
                if url.startswith(prefix):
                    return await route.fulfill(status=200, body=asset, headers={"content-type": ctype})
            log.blocked.append(url)
            if request.resource_type == "image" and not request.is_navigation_request():
                return await route.fulfill(status=200, body=self._placeholder,
                                           headers={"content-type": "image/jpeg"})
            if request.is_navigation_request():
                log.violations.append(f"navigation away to {url[:200]}")
            elif request.resource_type in ACTIVE_RESOURCE_TYPES:
                log.violations.append(f"network request ({request.resource_type}) to {url[:200]}")
            await route.abort("blockedbyclient")

        async def on_dialog(dialog):
            log.dialogs += 1
            with contextlib.suppress(Exception):
                await dialog.dismiss()

        def on_page(new_page):
            log.violations.append("opened a new window")
            new_page.on("dialog", on_dialog)

        await context.route("**/*", route)
        page = await context.new_page()
        page.on("dialog", on_dialog)
        context.on("page", on_page)
        page.set_default_timeout(self.config.op_timeout_s * 1000)
        return context, page
