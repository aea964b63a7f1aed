"""The office renderer inside its sandbox: starts soffice, then turns decks into PDF and PNG pages.

Run by envs/slide/office.py inside bubblewrap under Debian's /usr/bin/python3 (python3-uno lives
there, not in the project venv): `python3 uno_bridge.py PIPE_NAME`. It starts soffice itself,
listening on a UNO pipe whose socket lies in this sandbox's private /tmp (no program and no
other sandbox can see it), with its profile in the same tmpfs, connects, and serves requests on
stdin/stdout, each a JSON line followed by raw bytes:

    request  {"deck": N, "pages": P, "dpi": D} + N bytes of .pptx
    reply    {"ok": true, "pdf": M, "pngs": [S1, ...]} + M bytes of PDF + the PNG pages
             {"ok": false, "error": message}

Files live only in /tmp/work of the sandbox and are removed after each request; documents are
opened read-only, hidden, without macros or link updates. The first line written is {"ready":
true} once connected; a soffice that died between decks is started again. Standard library + uno
only; it never imports the project (a different interpreter runs it).
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import time

import uno
from com.sun.star.beans import PropertyValue

WORK = "/tmp/work"
NO_UPDATE = 0  # com.sun.star.document.UpdateDocMode.NO_UPDATE: never refresh links
NEVER_EXECUTE = 0  # com.sun.star.document.MacroExecMode.NEVER_EXECUTE


def _props(**kwargs):
    out = []
    for key, value in kwargs.items():
        prop = PropertyValue()
        prop.Name, prop.Value = key, value
        out.append(prop)
    return tuple(out)


def start_office(pipe_name):
    return subprocess.Popen(
        ["soffice", "--headless", "--invisible", "--nologo", "--norestore", "--nodefault",
         "--nolockcheck", "-env:UserInstallation=file:///tmp/profile",
         f"--accept=pipe,name={pipe_name};urp;StarOffice.ComponentContext"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def connect(pipe_name, timeout_s=60.0):
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ctx = resolver.resolve(f"uno:pipe,name={pipe_name};urp;StarOffice.ComponentContext")
            return ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def convert(desktop, src, dst):
    doc = desktop.loadComponentFromURL(
        uno.systemPathToFileUrl(src), "_blank", 0,
        _props(Hidden=True, ReadOnly=True, UpdateDocMode=NO_UPDATE,
               MacroExecutionMode=NEVER_EXECUTE))
    if doc is None:
        raise RuntimeError("LibreOffice could not open the deck")
    try:
        doc.storeToURL(uno.systemPathToFileUrl(dst), _props(FilterName="impress_pdf_Export"))
    finally:
        doc.close(True)


def render(desktop, deck, pages, dpi):
    """PDF bytes and PNG pages (pdftoppm) of one deck."""
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    try:
        src, pdf = os.path.join(WORK, "deck.pptx"), os.path.join(WORK, "deck.pdf")
        with open(src, "wb") as f:
            f.write(deck)
        convert(desktop, src, pdf)
        subprocess.run(["pdftoppm", "-r", str(int(dpi)), "-png", "-f", "1", "-l", str(int(pages)),
                        pdf, os.path.join(WORK, "page")], check=True, capture_output=True,
                       timeout=60)
        with open(pdf, "rb") as f:
            pdf_bytes = f.read()
        pngs = []
        for path in sorted(glob.glob(os.path.join(WORK, "page-*.png"))):
            with open(path, "rb") as f:
                pngs.append(f.read())
        return pdf_bytes, pngs
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


def main():
    office = start_office(sys.argv[1])
    desktop = connect(sys.argv[1])
    out = sys.stdout.buffer
    out.write(json.dumps({"ready": True}).encode() + b"\n")
    out.flush()
    stdin = sys.stdin.buffer
    for line in stdin:
        request = json.loads(line)
        deck = stdin.read(int(request["deck"]))
        if office.poll() is not None:  # soffice died since the last deck: start a fresh one
            office = start_office(sys.argv[1])
            desktop = connect(sys.argv[1])
        try:
            pdf, pngs = render(desktop, deck, request["pages"], request["dpi"])
            head = {"ok": True, "pdf": len(pdf), "pngs": [len(p) for p in pngs]}
            body = pdf + b"".join(pngs)
        except Exception as exc:  # report, keep serving; the parent decides whether to restart
            head, body = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}, b""
        out.write(json.dumps(head).encode() + b"\n" + body)
        out.flush()
    office.kill()


if __name__ == "__main__":
    main()
