"""UNO bridge to a running soffice: converts files to PDF on request, one JSON line at a time.

Run by envs/slide/office.py under Debian's /usr/bin/python3 (python3-uno lives there, not in
the project venv): `python3 uno_bridge.py PIPE_NAME`. Protocol on stdin/stdout, one JSON object
per line: request {"src": path, "dst": path}; reply {"ok": true} or {"ok": false, "error": msg}.
The first line written is {"ready": true} once connected. Standard library + uno only; it never
imports the project (a different interpreter runs it).
"""
import json
import sys
import time

import uno
from com.sun.star.beans import PropertyValue


def _props(**kwargs):
    out = []
    for key, value in kwargs.items():
        prop = PropertyValue()
        prop.Name, prop.Value = key, value
        out.append(prop)
    return tuple(out)


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
    doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(src), "_blank", 0,
                                       _props(Hidden=True, ReadOnly=True))
    if doc is None:
        raise RuntimeError(f"LibreOffice could not open {src}")
    try:
        doc.storeToURL(uno.systemPathToFileUrl(dst), _props(FilterName="impress_pdf_Export"))
    finally:
        doc.close(True)


def main():
    desktop = connect(sys.argv[1])
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            convert(desktop, request["src"], request["dst"])
            reply = {"ok": True}
        except Exception as exc:  # report, keep serving; the parent decides whether to restart
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
