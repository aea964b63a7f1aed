"""The sandbox's warm fork server (the zygote): `python -m envs.sandbox_server RUNNER ...`.

Started by `envs.sandbox.Sandbox` as a clean exec of the interpreter inside a bubblewrap
sandbox (`envs.bwrap`; or, as the explicit fallback, as a plain process), never forked from the
trainer, whose jax/XLA threads do not survive a fork. It imports the runner's heavy libraries
once (`runner.preload()`), then serves one request at a time over its stdin/stdout:

    host: env worker (the judge) --stdin/stdout--> bwrap --> sandbox server (root, few caps,
                                                             undumpable, never runs model code)
                                                              --fork--> program (one per run)

The program process raises the walls (`envs.isolation`, `envs.seccomp`), runs
`runner.run(code, request)` and writes the runner's artifacts as one frame to its own result
pipe (fd 3); its stdout/stderr go to pipes the server drains (keeping the first `output_bytes`).
It holds no other descriptor: the protocol streams stay the server's, and each reply carries
the request's run id, so no program can answer for the server or for another run. The server
enforces the wall-clock limit by killing the program's process group, reports its exit status
and resource use (wait4), then kills anything left running under the programs' uid and drops
the run's tmpfs. Everything dies with the server (parent-death signal, bwrap's PID namespace).

A runner is a module with `preload() -> None` and
`run(code: str, request: dict) -> tuple[dict, dict[str, bytes]]` (JSON-able result, named
binary artifacts): artifacts, not verdicts, since they come from the process that ran model
code; the judge outside parses them as data. In bwrap mode a run cannot read `envs/` (it is
covered before the program starts), so everything `run` imports from the project must already
be imported by `preload`. Frames are: 8-byte header length, 8-byte payload
length, JSON header, payload. The server never executes model code itself and never unpickles
anything. Never imports jax.
"""
from __future__ import annotations

import gc
import importlib
import io
import json
import os
import resource
import selectors
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
from typing import Any, BinaryIO

import envs
from envs import isolation, seccomp

_FRAME_HEAD = struct.Struct(">QQ")
SETUP_FAILED_EXIT = 71
_RESULT_FD = 3


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

    def __init__(self, runner, base_dir: str, mode: str, program_uid: int | None):
        self.runner = runner  # already preloaded
        self.base_dir, self.mode, self.program_uid = base_dir, mode, program_uid
        self.run_dir = run_dir(base_dir)
        self.hidden = [os.path.dirname(os.path.abspath(envs.__file__))] if mode == "bwrap" else []
        self.seccomp = _seccomp_filter(required=mode == "bwrap")
        gc.collect()
        gc.freeze()  # keep preloaded objects out of the collector: fewer copy-on-write pages per fork
        self.address_space = isolation.address_space_in_use()

    def run(self, header: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        limits = header["limits"]
        if self.mode == "bwrap":
            workdir = self.run_dir
            isolation.mount_run_dir(workdir, int(limits["disk_bytes"]), self.program_uid)
        else:
            workdir = tempfile.mkdtemp(prefix="run-", dir=self.base_dir)
        try:
            reply, payload = self._supervise(header, limits, workdir)
        finally:
            if self.mode == "bwrap":
                _kill_uid(self.program_uid)  # whatever the program left, before the next one
                isolation.unmount_run_dir(workdir)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        reply["run_id"] = header["run_id"]
        return reply, payload

    def _supervise(self, header, limits, workdir) -> tuple[dict[str, Any], bytes]:
        pipes = [os.pipe() for _ in range(3)]  # result, stdout, stderr
        start = time.monotonic()
        deadline = start + float(limits["wall_seconds"])
        server_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            for read_end, _ in pipes:
                os.close(read_end)
            self._program(header, limits, workdir, [w for _, w in pipes], server_pid)
        for _, write_end in pipes:
            os.close(write_end)
        data, out, err = (_Capped(int(limits["result_bytes"])), _Capped(int(limits["output_bytes"])),
                          _Capped(int(limits["output_bytes"])))
        timed_out = _drain({pipes[0][0]: data, pipes[1][0]: out, pipes[2][0]: err}, deadline)
        waited = _wait(pid, deadline)
        if waited is None:  # out of time, or it closed its pipes and kept running
            timed_out = True
            _kill_group(pid)
            waited = os.wait4(pid, 0)[1:]
        _kill_group(pid)  # anything left in its process group (nothing, unless a run misbehaved)
        _reap_orphans()
        wait_status, usage = waited
        reply = {"op": "result", "timed_out": timed_out, "wall_s": time.monotonic() - start,
                 "exit_code": os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else None,
                 "signal": os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None,
                 "cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_kb": usage.ru_maxrss,
                 "stdout": out.data.decode("utf-8", "replace"), "stdout_bytes": out.total,
                 "stderr": err.data.decode("utf-8", "replace"), "stderr_bytes": err.total,
                 "result_overflow": data.overflowed, "isolation": self.mode}
        return reply, b"" if data.overflowed else data.data

    def _program(self, header, limits, workdir, program_fds, parent) -> None:
        """The program's process: raise the walls, run the runner, write its result, exit.

        It keeps exactly three descriptors (stdout, stderr, its own result pipe at fd 3): never
        the server's protocol streams, so it cannot speak for the server or for another run."""
        code = SETUP_FAILED_EXIT
        try:
            os.setsid()  # its own process group: a time-out kills the group
            null = os.open(os.devnull, os.O_RDONLY)
            for target, fd in zip((0, 1, 2, _RESULT_FD), (null, program_fds[1], program_fds[2],
                                                           program_fds[0])):
                os.dup2(fd, target)
            os.closerange(_RESULT_FD + 1, _max_fd())
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                          errors="backslashreplace", line_buffering=True)
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                          errors="backslashreplace", line_buffering=True)
            bwrap = self.mode == "bwrap"
            if bwrap:
                isolation.hide_paths(self.hidden)
            isolation.apply_rlimits(
                cpu_seconds=float(limits["cpu_seconds"]),
                address_space_bytes=self.address_space + int(limits["memory_bytes"]),
                file_size_bytes=int(limits["file_size_bytes"]),
                max_processes=int(limits["max_processes"]) if bwrap else None)
            if bwrap:
                isolation.become_program_uid(self.program_uid)
            isolation.die_with_parent(parent)  # after the uid change, which clears it
            os.chdir(workdir)  # the run's tmpfs is the program uid's own (0700)
            os.umask(0o077)
            os.environ.update({"HOME": workdir, "TMPDIR": workdir, "MPLCONFIGDIR": workdir,
                               "SDPO_SANDBOX_RUN": header["run_id"]})
            tempfile.tempdir = workdir
            sys.dont_write_bytecode = True
            if self.seccomp is not None:
                self.seccomp.load()
            import faulthandler
            faulthandler.enable(file=sys.stderr)
            sys.addaudithook(isolation.make_audit_guard(workdir, block_network=not bwrap))
            isolation.disable_process_functions()
            code = 0
            try:
                result, artifacts = self.runner.run(header["code"], header["request"])
                frame = pack_artifacts(result, artifacts)
            except BaseException:  # noqa: BLE001 - a runner bug, reported as such
                frame = pack_artifacts({"runner_error": traceback.format_exc(limit=8)[-4000:]}, {})
            view = memoryview(frame)
            while view:
                view = view[os.write(_RESULT_FD, view):]
        except BaseException:  # noqa: BLE001
            try:
                os.write(2, traceback.format_exc().encode("utf-8", "replace")[-4000:])
            except OSError:
                pass
        finally:
            os._exit(code)


def _seccomp_filter(required: bool):
    """The program's seccomp filter, built once; in process mode a missing libseccomp is
    tolerated (with a warning), in bwrap mode it is an error naming the fix."""
    try:
        return seccomp.Filter()
    except seccomp.SeccompUnavailable as err:
        if required:
            raise
        print(f"WARNING: sandbox without seccomp: {err}", file=sys.stderr)
        return None


def _max_fd() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _kill_uid(uid: int | None) -> None:
    """Kill every process of the programs' uid in this PID namespace (none, unless a run left
    one despite the seccomp filter)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == uid:
                os.kill(int(entry), signal.SIGKILL)
        except OSError:
            continue
    _reap_orphans()


def _drain(sinks: dict[int, _Capped], deadline: float) -> bool:
    """Read every pipe to its end, or until the deadline (then True)."""
    selector = selectors.DefaultSelector()
    for fd in sinks:
        selector.register(fd, selectors.EVENT_READ)
    open_fds = set(sinks)
    try:
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            for key, _ in selector.select(timeout=left):
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    sinks[key.fd].add(chunk)
                else:
                    selector.unregister(key.fd)
                    open_fds.discard(key.fd)
        return False
    finally:
        selector.close()
        for fd in sinks:
            os.close(fd)


def _wait(pid: int, deadline: float):
    """(wait status, rusage) of the run once it exits, or None if it is still alive at the deadline."""
    while True:
        waited_pid, status, usage = os.wait4(pid, os.WNOHANG)
        if waited_pid == pid:
            return status, usage
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.002)


def _reap_orphans() -> None:
    """Collect exited orphans (as PID 1 of its namespace the server inherits them)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_dir(base_dir: str) -> str:
    """Where runs work in bwrap mode (each gets a fresh tmpfs mounted there)."""
    path = os.path.join(base_dir, "run")
    os.makedirs(path, exist_ok=True)
    return path


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print("usage: python -m envs.sandbox_server RUNNER_MODULE BASE_DIR ISOLATION PROGRAM_UID",
              file=sys.stderr)
        return 2
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from libraries must not corrupt the protocol stream
    protocol_in = os.fdopen(0, "rb")
    isolation.die_with_parent(os.getppid())
    try:
        mode, program_uid = argv[3], int(argv[4])
        if mode not in ("bwrap", "process"):
            raise ValueError(f"isolation must be 'bwrap' or 'process', got {mode!r}")
        if mode == "bwrap":
            isolation.make_undumpable()
        runner = importlib.import_module(argv[1])
        runner.preload()
        server = Server(runner, argv[2], mode, program_uid if mode == "bwrap" else None)
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
