"""The sandbox's warm fork server: `python -m envs.sandbox_server RUNNER_MODULE`.

Started by `envs.sandbox.Sandbox` as a clean exec of the interpreter (never forked from the
trainer, whose jax/XLA threads do not survive a fork). It imports the runner's heavy libraries
once (`runner.preload()`), then serves one request at a time over its stdin/stdout:

    server --fork--> supervisor (own session; namespaces entered here)
                         [--fork--> PID-1 reaper, namespace mode] --fork--> program

The program process raises the walls (`envs.isolation`), runs `runner.run(code, request)` and
writes the runner's result as one frame to a pipe; its stdout/stderr go to pipes the server
drains (keeping the first `output_bytes`). The supervisor waits for it and reports its exit
status and resource use. The server enforces the wall-clock limit by killing the supervisor's
process group; the program dies with its supervisor (parent-death signal) and, in namespace
mode, takes every process it started with it.

A runner is a module with `preload() -> None` and
`run(code: str, request: dict) -> tuple[dict, dict[str, bytes]]` (JSON-able result, named
binary artifacts). Frames are: 8-byte header length, 8-byte payload length, JSON header,
payload. The server never executes model code itself and never unpickles anything.
Never imports jax.
"""
from __future__ import annotations

import gc
import importlib
import io
import json
import os
import selectors
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
from typing import Any, BinaryIO

from envs import isolation

_FRAME_HEAD = struct.Struct(">QQ")
SETUP_FAILED_EXIT = 71


# ---------------------------------------------------------------- framing
def encode_frame(header: dict[str, Any], payload: bytes = b"") -> bytes:
    head = json.dumps(header, ensure_ascii=True).encode("ascii")
    return _FRAME_HEAD.pack(len(head), len(payload)) + head + payload


def decode_frame(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Parse one frame from untrusted bytes; ValueError when they are not a frame."""
    if len(data) < _FRAME_HEAD.size:
        raise ValueError("result frame is truncated")
    head_len, payload_len = _FRAME_HEAD.unpack_from(data)
    end = _FRAME_HEAD.size + head_len
    if end + payload_len != len(data):
        raise ValueError("result frame lengths do not match its size")
    header = json.loads(data[_FRAME_HEAD.size:end].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("result frame header is not an object")
    return header, data[end:]


def write_frame(stream: BinaryIO, header: dict[str, Any], payload: bytes = b"") -> None:
    stream.write(encode_frame(header, payload))
    stream.flush()


def read_frame(stream: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    """Next frame from a trusted stream, or None at end of stream."""
    head = _read_exactly(stream, _FRAME_HEAD.size)
    if head is None:
        return None
    head_len, payload_len = _FRAME_HEAD.unpack(head)
    body = _read_exactly(stream, head_len + payload_len)
    if body is None:
        return None
    return json.loads(body[:head_len].decode("ascii")), body[head_len:]


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def pack_artifacts(result: dict[str, Any], artifacts: dict[str, bytes]) -> bytes:
    """One frame holding the runner's JSON result and its named binary artifacts."""
    index, offset = {}, 0
    for name, blob in artifacts.items():
        index[name] = [offset, len(blob)]
        offset += len(blob)
    return encode_frame({"result": result, "artifacts": index}, b"".join(artifacts.values()))


def unpack_artifacts(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Inverse of pack_artifacts on untrusted bytes; ValueError when malformed."""
    header, payload = decode_frame(data)
    result, index = header.get("result"), header.get("artifacts", {})
    if not isinstance(result, dict) or not isinstance(index, dict):
        raise ValueError("result frame lacks a result object")
    artifacts = {}
    for name, span in index.items():
        start, length = int(span[0]), int(span[1])
        if start < 0 or length < 0 or start + length > len(payload):
            raise ValueError(f"artifact {name!r} lies outside the frame")
        artifacts[str(name)] = payload[start:start + length]
    return result, artifacts


# ---------------------------------------------------------------- one run
class _Capped:
    """Keeps the first `limit` bytes written to it and counts the rest."""

    def __init__(self, limit: int):
        self.limit, self.total, self.parts = limit, 0, []

    def add(self, chunk: bytes) -> None:
        room = self.limit - self.total
        if room > 0:
            self.parts.append(chunk[:room])
        self.total += len(chunk)

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)

    @property
    def overflowed(self) -> bool:
        return self.total > self.limit


class Server:
    """Serves runs of one runner module; see the module docstring."""

    def __init__(self, runner_name: str, base_dir: str, isolation_mode: str):
        self.runner = importlib.import_module(runner_name)
        self.runner.preload()
        self.base_dir = base_dir
        if isolation_mode == "auto":
            isolation_mode = "namespaces" if isolation.probe_namespaces() else "process"
        elif isolation_mode == "namespaces" and not isolation.probe_namespaces():
            raise RuntimeError("sandbox isolation 'namespaces' needs root on Linux (it unshares PID, "
                               "network and mount namespaces); use isolation='auto' or 'process'")
        self.mode = isolation_mode
        self.mount_point = os.path.join(base_dir, "mnt")
        os.makedirs(self.mount_point, exist_ok=True)
        gc.collect()
        gc.freeze()  # keep preloaded objects out of the collector: fewer copy-on-write pages per fork
        self.address_space = isolation.address_space_in_use()

    def run(self, header: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        limits = header["limits"]
        if self.mode == "namespaces":
            workdir = self.mount_point
        else:
            workdir = tempfile.mkdtemp(prefix="run-", dir=self.base_dir)
        try:
            return self._supervise(header, limits, workdir)
        finally:
            if workdir != self.mount_point:
                shutil.rmtree(workdir, ignore_errors=True)

    def _supervise(self, header, limits, workdir) -> tuple[dict[str, Any], bytes]:
        data_r, data_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            for fd in (data_r, out_r, err_r, status_r):
                os.close(fd)
            self._supervisor(header, limits, workdir, (data_w, out_w, err_w), status_w)
        for fd in (data_w, out_w, err_w, status_w):
            os.close(fd)
        data, out, err = (_Capped(int(limits["result_bytes"])), _Capped(int(limits["output_bytes"])),
                          _Capped(int(limits["output_bytes"])))
        status = _Capped(1 << 16)
        sinks = {data_r: data, out_r: out, err_r: err, status_r: status}
        timed_out = self._drain(sinks, status_r, start + float(limits["wall_seconds"]), pid)
        _, wait_status = os.waitpid(pid, 0)
        wall = time.monotonic() - start
        try:
            child = json.loads(status.data.decode()) if status.data else {}
        except ValueError:
            child = {}
        reply = {"op": "result", "timed_out": timed_out, "wall_s": wall,
                 "stdout": out.data.decode("utf-8", "replace"), "stdout_bytes": out.total,
                 "stderr": err.data.decode("utf-8", "replace"), "stderr_bytes": err.total,
                 "result_overflow": data.overflowed, "isolation": self.mode,
                 "supervisor_exit": os.waitstatus_to_exitcode(wait_status), **child}
        return reply, b"" if data.overflowed else data.data

    @staticmethod
    def _drain(sinks: dict[int, _Capped], status_fd: int, deadline: float, pid: int) -> bool:
        """Read every pipe to its end; kill the run's group at the deadline. True if killed."""
        selector = selectors.DefaultSelector()
        for fd in sinks:
            selector.register(fd, selectors.EVENT_READ)
        open_fds, timed_out, grace_deadline = set(sinks), False, None
        try:
            while open_fds:
                now = time.monotonic()
                limit = deadline if grace_deadline is None else min(deadline, grace_deadline)
                if now >= limit:
                    if now >= deadline:
                        timed_out = True
                        _kill_group(pid)
                    break
                for key, _ in selector.select(timeout=limit - now):
                    chunk = os.read(key.fd, 1 << 16)
                    if chunk:
                        sinks[key.fd].add(chunk)
                        continue
                    selector.unregister(key.fd)
                    open_fds.discard(key.fd)
                    if key.fd == status_fd:  # the supervisor is done: the program is dead
                        grace_deadline = time.monotonic() + 1.0
        finally:
            selector.close()
            for fd in sinks:
                os.close(fd)
        _kill_group(pid)  # anything left in the group (nothing, unless a run misbehaved)
        return timed_out

    def _supervisor(self, header, limits, workdir, program_fds, status_w) -> None:
        """Child 1: own session and, in namespace mode, the run's namespaces. The program's
        parent reports how it ended: this process, or in namespace mode a PID-1 reaper below
        it (the program must not be PID 1 itself: PID 1 ignores signals it has no handler for,
        so a raised SIGSEGV or SIGXCPU would not end it)."""
        report: dict[str, Any] = {}
        try:
            os.setsid()
            if self.mode == "namespaces":
                isolation.enter_run_namespaces(workdir, int(limits["disk_bytes"]))
                reaper = os.fork()
                if reaper != 0:
                    for fd in (*program_fds, status_w):
                        os.close(fd)
                    os.waitpid(reaper, 0)
                    os._exit(0)
                isolation.die_with_parent(0)  # PID 1: its parent lives outside the namespace
            parent = os.getpid()
            program = os.fork()
            if program == 0:
                os.close(status_w)
                self._program(header, limits, workdir, program_fds, parent)
            for fd in program_fds:
                os.close(fd)
            _, wait_status, usage = os.wait4(program, 0)
            report = {"exit_code": os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else None,
                      "signal": os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None,
                      "cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_kb": usage.ru_maxrss}
        except BaseException as err:  # noqa: BLE001 - report, never raise into the server's loop
            report = {"setup_error": f"{type(err).__name__}: {err}"}
        finally:
            try:
                os.write(status_w, json.dumps(report).encode())
            finally:
                os._exit(0)

    def _program(self, header, limits, workdir, program_fds, parent) -> None:
        """The program's process: raise the walls, run the runner, write its result, exit."""
        data_w, out_w, err_w = program_fds
        code = SETUP_FAILED_EXIT
        try:
            isolation.die_with_parent(parent)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            for fd in (out_w, err_w, null):
                os.close(fd)
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                          errors="backslashreplace", line_buffering=True)
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                          errors="backslashreplace", line_buffering=True)
            os.chdir(workdir)
            os.umask(0o077)
            os.environ.update({"HOME": workdir, "TMPDIR": workdir, "SDPO_SANDBOX_RUN": header["run_id"]})
            tempfile.tempdir = workdir
            sys.dont_write_bytecode = True
            if self.mode == "namespaces":
                isolation.drop_capabilities()
            isolation.apply_rlimits(
                cpu_seconds=float(limits["cpu_seconds"]),
                address_space_bytes=self.address_space + int(limits["memory_bytes"]),
                file_size_bytes=int(limits["file_size_bytes"]),
                max_processes=int(limits["max_processes"]) if self.mode == "namespaces" else None)
            import faulthandler
            faulthandler.enable(file=sys.stderr)
            sys.addaudithook(isolation.make_audit_guard(workdir, block_network=self.mode != "namespaces"))
            isolation.disable_process_functions()
            code = 0
            try:
                result, artifacts = self.runner.run(header["code"], header["request"])
                frame = pack_artifacts(result, artifacts)
            except BaseException:  # noqa: BLE001 - a runner bug, reported as such
                frame = pack_artifacts({"runner_error": traceback.format_exc(limit=8)[-4000:]}, {})
            view = memoryview(frame)
            while view:
                view = view[os.write(data_w, view):]
        except BaseException:  # noqa: BLE001
            try:
                os.write(2, traceback.format_exc().encode("utf-8", "replace")[-4000:])
            except OSError:
                pass
        finally:
            os._exit(code)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python -m envs.sandbox_server RUNNER_MODULE BASE_DIR ISOLATION", file=sys.stderr)
        return 2
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from libraries must not corrupt the protocol stream
    protocol_in = os.fdopen(0, "rb")
    isolation.die_with_parent(os.getppid())
    try:
        server = Server(argv[1], argv[2], argv[3])
    except BaseException as err:  # noqa: BLE001 - tell the parent why, then stop
        write_frame(protocol_out, {"op": "failed", "error": f"{type(err).__name__}: {err}",
                                   "traceback": traceback.format_exc(limit=6)})
        return 1
    write_frame(protocol_out, {"op": "ready", "isolation": server.mode, "pid": os.getpid()})
    while (request := read_frame(protocol_in)) is not None:
        header, _ = request
        reply, payload = server.run(header)
        write_frame(protocol_out, reply, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
