"""The hostile corpus against the renderers: decks and pages written to escape through
LibreOffice or Chromium, to blind or rename their way past the judge, or to outlive the worker.
Each must fail cleanly or score no better than an honest artifact, with 0 contact with the host
(no request to a host socket, no file written) and nothing left running or on disk after the
process that owns the renderers is killed, by SIGTERM or SIGKILL.
"""
from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from envs import bwrap
from envs.eval import pptx_samples
from envs.slide.pptx_env import PptxSlideEnv
from envs.task import Task
from envs.web.env import WebEnv

pytestmark = pytest.mark.skipif(bwrap.unavailable_reason() is not None,
                                reason=f"no bubblewrap sandbox here: {bwrap.unavailable_reason()}")
ROOT = pathlib.Path(__file__).resolve().parents[2]
PPTX = Task("slide_pptx", "hostile", "", width=1280, height=720)
WEB = Task("web", "hostile", "", width=1280, height=720)
DEFECTIVE_PAGE = ("<html><body style='margin:0'><h1 style='color:#ddd'>Barely readable title</h1>"
                  "<p style='width:120px;white-space:nowrap;overflow:hidden'>a line of text far too "
                  "long for its box</p></body></html>")


class Listener:
    """TCP and UDP sockets on the host's loopback, recording any contact."""

    def __init__(self):
        self.contacts: list[str] = []
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(4)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        for sock, kind in ((self.tcp, "tcp"), (self.udp, "udp")):
            sock.settimeout(0.5)
            threading.Thread(target=self._watch, args=(sock, kind), daemon=True).start()

    def _watch(self, sock, kind):
        while sock.fileno() >= 0:
            try:
                sock.accept() if kind == "tcp" else sock.recvfrom(2048)
                self.contacts.append(kind)
            except (socket.timeout, OSError):
                if sock.fileno() < 0:
                    return

    def close(self):
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def listener():
    ears = Listener()
    yield ears
    ears.close()


# ---------------------------------------------------------------- LibreOffice
@pytest.fixture(scope="module")
def pptx_env():
    env = PptxSlideEnv()
    yield env
    env.close()


def test_a_zip_bomb_deck_is_refused_before_anything_opens_it(pptx_env):
    code = ("import zipfile\nwith zipfile.ZipFile('deck.pptx', 'w', zipfile.ZIP_DEFLATED) as z:\n"
            "    with z.open('ppt/media/bomb.bin', 'w', force_zip64=True) as f:\n"
            "        block = bytes(1 << 20)\n        for _ in range(200):\n            f.write(block)\n")
    feedback = pptx_env.step(PPTX, code)
    assert not feedback.ok and feedback.error.type == "UnsafeDeck", feedback.error


def test_a_deck_linking_host_resources_is_refused(pptx_env, listener):
    port = listener.tcp.getsockname()[1]
    code = (pptx_samples.clean_program(1).code
            + "\nfrom pptx.opc.constants import RELATIONSHIP_TYPE as RT\n"
            f"prs.slides[0].part.relate_to('http://127.0.0.1:{port}/x.png', RT.IMAGE, is_external=True)\n"
            "prs.slides[0].part.relate_to('file:///etc/hostname', RT.IMAGE, is_external=True)\n"
            "prs.save('deck.pptx')\n")
    feedback = pptx_env.step(PPTX, code)
    assert not feedback.ok and feedback.error.type == "UnsafeDeck", feedback.error
    time.sleep(0.5)
    assert not listener.contacts, "the renderer fetched a linked resource from the host"


def test_a_blank_deck_scores_below_a_real_one(pptx_env):
    real = pptx_env.step(PPTX, pptx_samples.clean_program(1).code)
    blank = pptx_env.step(PPTX, "from pptx import Presentation\nprs = Presentation()\n"
                                "prs.slides.add_slide(prs.slide_layouts[6])\nprs.save('deck.pptx')\n")
    assert real.ok and blank.ok, (real.error, blank.error)
    assert blank.reward < real.reward, (blank.reward_parts, real.reward_parts)


def test_a_program_cannot_reach_libreoffice(pptx_env):
    code = "import glob\nprint(glob.glob('/tmp/**', recursive=True))\nimport uno\n"
    feedback = pptx_env.step(PPTX, code)
    assert not feedback.ok and "OSL_PIPE" not in feedback.stdout


# ---------------------------------------------------------------- Chromium
@pytest.fixture(scope="module")
def web_env():
    env = WebEnv()
    yield env
    env.close()


def test_pages_cannot_blind_the_judge_or_rename_their_elements(web_env):
    honest = web_env.step(WEB, DEFECTIVE_PAGE)
    assert honest.ok and honest.defects
    blinding = DEFECTIVE_PAGE.replace("<body", "<script>window.getComputedStyle = () => ({display: "
                                                "'none'}); Element.prototype.getBoundingClientRect = "
                                                "() => ({left: 0, top: 0, right: 0, bottom: 0});"
                                                "</script><body")
    blinded = web_env.step(WEB, blinding)
    assert blinded.reward <= honest.reward and [d.kind for d in blinded.defects] == \
        [d.kind for d in honest.defects], "a page patched the judge's view of itself"
    renaming = DEFECTIVE_PAGE.replace("</body>", "<script>for (const e of document.querySelectorAll("
                                                 "'[data-vs]')) e.setAttribute('data-vs', '0')"
                                                 "</script></body>")
    renamed = web_env.step(WEB, renaming)
    assert not renamed.ok and renamed.error.type == "PageTamperError", renamed.error


def test_a_blank_page_scores_below_an_honest_defective_one(web_env):
    honest = web_env.step(WEB, DEFECTIVE_PAGE)
    blank = web_env.step(WEB, "<html><body style='background:#fff'></body></html>")
    assert blank.reward < honest.reward, (blank.reward_parts, honest.reward_parts)


def test_webrtc_and_fetches_never_reach_the_host(web_env, listener):
    tcp, udp = listener.tcp.getsockname()[1], listener.udp.getsockname()[1]
    page = ("<html><body><p>rtc</p><script>"
            f"const pc = new RTCPeerConnection({{iceServers: [{{urls: 'stun:127.0.0.1:{udp}'}}]}});"
            "pc.createDataChannel('x'); pc.createOffer().then(o => pc.setLocalDescription(o));"
            f"fetch('http://127.0.0.1:{tcp}/leak').catch(() => 0);"
            f"new Image().src = 'http://127.0.0.1:{tcp}/img.png';"
            "</script></body></html>")
    web_env.step(WEB, page)
    time.sleep(1.0)
    assert not listener.contacts, f"the page reached the host: {listener.contacts}"


@pytest.mark.slow
def test_a_page_allocating_without_bound_fails_and_the_browser_recovers(web_env):
    bomb = ("<html><body><script>const keep = []; for (let i = 0; i < 60; i++) "
            "keep.push(new Uint8Array(100 << 20).fill(1));</script></body></html>")
    feedback = web_env.step(WEB, bomb)
    assert not feedback.ok, "a page holding gigabytes must fail"
    assert web_env.step(WEB, DEFECTIVE_PAGE).ok, "the worker serves again after the restart"


# ---------------------------------------------------------------- killing the owner
SLOW_DECK = (pptx_samples.clean_program(1).code + "\nfor i in range(300):\n"
             "    box = prs.slides.add_slide(prs.slide_layouts[6]).shapes.add_textbox(0, 0, 9000000, 900000)\n"
             "    box.text_frame.text = 'slide %d ' % i * 20\nprs.save('deck.pptx')\n")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
@pytest.mark.parametrize("domain, source, renderer", [
    ("slide_pptx", SLOW_DECK, "soffice"),
    ("web", DEFECTIVE_PAGE + "<script>while (true) {}</script>", "chrom")])
def test_killing_the_cli_leaves_no_renderer_and_no_temp_folder(tmp_path, domain, source, renderer, sig):
    program = tmp_path / "program.txt"
    program.write_text(source)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    cli = subprocess.Popen([sys.executable, "-m", "envs.check", "--domain", domain, str(program)],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)})
    tree: list[psutil.Process] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.name().startswith(renderer) for p in tree):
        time.sleep(0.1)
        try:
            tree = psutil.Process(cli.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            break
    assert any(p.name().startswith(renderer) for p in tree), f"the CLI never started {renderer}"
    tree = psutil.Process(cli.pid).children(recursive=True)
    cli.send_signal(sig)
    cli.wait(30)
    _, alive = psutil.wait_procs(tree, timeout=15)
    assert not alive, f"still running after the CLI died: {[p.name() for p in alive]}"
    assert not list(tmp.iterdir()), f"temp files left behind: {list(tmp.iterdir())}"
