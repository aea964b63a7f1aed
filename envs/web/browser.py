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
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any

import psutil

from envs import bwrap

PAGE_ORIGIN = "http://sdpo.page"
PAGE_URL = PAGE_ORIGIN + "/index.html"
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE sdpo.page",
                  "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
                  "--webrtc-ip-handling-policy=disable_non_proxied_udp",
                  "--js-flags=--max-old-space-size=512",
                  "--font-render-hinting=none", "--hide-scrollbars")
SANDBOXED_NODE = pathlib.Path(__file__).with_name("sandboxed-node")
JUDGE_WORLD = "sdpo-judge"  # the isolated world every judging script runs in
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
    max_memory_mb: int = 3072       # the browser's processes together; above it the page fails
    sandbox: bool = True            # driver and Chromium inside bubblewrap (envs.web.node_sandbox)

    def __post_init__(self):
        if not (os.path.isfile(self.executable) or shutil.which(self.executable)):
            raise FileNotFoundError(
                f"Chromium not found at {self.executable!r}: install Debian's chromium "
                f"(bash launch/setup.sh) or set BrowserConfig.executable")


@contextlib.contextmanager
def _driver_launcher(sandbox: bool) -> Iterator[None]:
    """Make Playwright start its driver through the bubblewrap shim (it reads the variable once,
    at start), or warn loudly that the browser runs on the host."""
    if not sandbox:
        warnings.warn("BROWSER FALLBACK: Chromium runs on the host without bubblewrap; a page "
                      "that escapes the renderer reaches host files and loopback.", RuntimeWarning,
                      stacklevel=4)
        yield
        return
    reason = bwrap.unavailable_reason()
    if reason is not None:
        raise PageError("setup", f"the browser sandbox is unavailable: {reason}; set "
                                 "BrowserConfig.sandbox=False only knowingly (README, Security)")
    saved = {k: os.environ.get(k) for k in ("PLAYWRIGHT_NODEJS_PATH", "SDPO_PYTHON")}
    os.environ.update({"PLAYWRIGHT_NODEJS_PATH": str(SANDBOXED_NODE),
                       "SDPO_PYTHON": sys.executable})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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
    """An open page in its own context; every call is time-limited and raises PageError.

    `evaluate` runs in an isolated world (a JavaScript realm of the judge's own on the page's
    DOM): page scripts can change the document, but not the functions the judge calls
    (getComputedStyle, getBoundingClientRect, ...) nor the judge's globals."""

    def __init__(self, browser: "Browser", page: Any, log: PageLog, cdp: Any, world: int):
        self._browser = browser
        self._page = page
        self._cdp, self._world = cdp, world
        self.log = log

    def evaluate(self, expression: str, arg: Any = None, timeout_s: float | None = None) -> Any:
        return self._browser._run(self._call(expression, arg), "evaluate", timeout_s)

    async def _call(self, function: str, arg: Any) -> Any:
        reply = await self._cdp.send("Runtime.callFunctionOn", {
            "functionDeclaration": function, "executionContextId": self._world,
            "arguments": [{"value": arg}], "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = (details.get("exception") or {}).get("description") or details.get("text", "")
            raise PageError("page", f"judging script failed: {str(text)[:300]}")
        return reply["result"].get("value")

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

        with _driver_launcher(self.config.sandbox):
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

    async def _watched(self, coro, timeout: float):
        """`coro` under a deadline, checking the browser's memory every 0.2 s meanwhile."""
        task = asyncio.ensure_future(coro)
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = max(0.0, deadline - time.monotonic())
                done, _ = await asyncio.wait({task}, timeout=min(0.2, left))
                if done:
                    return task.result()
                if time.monotonic() >= deadline:
                    raise asyncio.TimeoutError()
                if self._memory_mb() > self.config.max_memory_mb:
                    raise MemoryError()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    def _memory_mb(self) -> float:
        """Private (unshared) resident memory of every process this browser started: driver,
        Chromium, renderers; each counted once."""
        members: dict[int, psutil.Process] = {}
        for pid in self._own_pids:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                members.update((p.pid, p) for p in [proc, *proc.children(recursive=True)])
        total = 0
        for proc in members.values():
            with contextlib.suppress(psutil.Error):
                info = proc.memory_info()
                total += info.rss - info.shared
        return total / 2**20

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
            return self._loop.run_until_complete(self._watched(coro, timeout))
        except MemoryError:
            self.restart()
            raise PageError("memory", f"page {what}: the browser used more than "
                                      f"{self.config.max_memory_mb} MiB and was restarted "
                                      f"(a page allocating without bound)") from None
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
            cdp, world = self._run(self._isolated_world(context, page), "isolate", 10)
            judged = Page(self, page, log, cdp, world)
            judged.evaluate(
                "(ms) => Promise.race([document.fonts.ready, new Promise(r => setTimeout(r, 2000))])"
                ".then(() => new Promise(r => setTimeout(() => requestAnimationFrame(() => r()), ms)))",
                int(self.config.settle_s * 1000), timeout_s=remaining)
            yield judged
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

    @staticmethod
    async def _isolated_world(context, page) -> tuple[Any, int]:
        cdp = await context.new_cdp_session(page)
        tree = await cdp.send("Page.getFrameTree")
        world = await cdp.send("Page.createIsolatedWorld", {
            "frameId": tree["frameTree"]["frame"]["id"], "worldName": JUDGE_WORLD})
        return cdp, world["executionContextId"]

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
