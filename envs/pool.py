"""A pool of env worker processes: submit (task, code), consume each Feedback as it finishes.

    with EnvPool(num_workers=4, env_config={"chart": {...}, "web": {...}}) as pool:
        for index, feedback in pool.stream(items):            # items: [(Task, code), ...]
            ...                                                # as each finishes (ordered=True:
                                                               # in the items' order)
        ids = [pool.submit(task, code) for task, code in batch]   # or submit / poll style:
        done = pool.poll(timeout=0.5)                          # [(id, Feedback), ...] finished so far
        feedbacks = pool.map(items)                            # a barrier, when that is what you want

Workers are clean interpreter processes (`python -m envs.pool`, never forked from the caller,
which may hold jax threads). Each keeps its envs alive across items (one per domain, built
through `envs.registry` from `env_config[domain]`; a chart env keeps its warm sandbox, a web
env its browser); `warm` names the domains to build before a worker takes items (otherwise the
first item of a domain pays for building its env). A background thread dispatches items, so
work proceeds while the caller is busy. A worker that dies or exceeds `item_timeout_s` on an
item is killed and replaced; the item is retried once on a fresh worker and then reported as a
failed Feedback (ExecError "WorkerCrash"). Every submitted item yields exactly one Feedback: nothing is lost or duplicated.
An env that raises is reported per item (ExecError "EnvError": never the program's fault); when
`max_env_errors_in_a_row` items in a row end that way the env cannot work on this machine (no
sandbox, no browser, no LibreOffice), and the caller's next `poll` / `results` / `map` raises
EnvSetupError naming it, instead of every program silently counting as a failed execution.
`close()` (or the context manager, or interpreter exit) stops every worker; workers also die
with the process that owns the pool. Never imports jax.
"""
from __future__ import annotations

import atexit
import collections
import itertools
import os
import pickle
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import envs
from envs.feedback import ExecError, Feedback
from envs.task import Task

_LENGTH = struct.Struct(">Q")
ENV_ERROR = "EnvError"  # ExecError type of an item whose env raised (a bug or a setup problem)
_POOLS: "weakref.WeakSet[EnvPool]" = weakref.WeakSet()


def _encode(message: Any) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


class _Worker:
    """One worker process and what it is doing."""

    def __init__(self, index: int, env_config: dict[str, Any], warm: Sequence[str], startup_timeout_s: float):
        self.index = index
        project_root = os.path.dirname(os.path.dirname(os.path.abspath(envs.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen([sys.executable, "-m", "envs.pool"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env, start_new_session=True)
        self.buffer = b""
        self.item: int | None = None
        self.ready = False  # set when its warm envs are built: item deadlines never pay start-up
        self.deadline = time.monotonic() + startup_timeout_s
        self.send(("config", env_config, list(warm)))

    def send(self, message: Any) -> None:
        self.process.stdin.write(_encode(message))
        self.process.stdin.flush()

    def take_messages(self, chunk: bytes) -> list[Any]:
        self.buffer += chunk
        messages = []
        while len(self.buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self.buffer)
            if len(self.buffer) < _LENGTH.size + length:
                break
            body = self.buffer[_LENGTH.size:_LENGTH.size + length]
            self.buffer = self.buffer[_LENGTH.size + length:]
            messages.append(pickle.loads(body))
        return messages

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class EnvSetupError(RuntimeError):
    """The envs fail on every item for a reason of this machine, not of the programs."""


class EnvPool:
    """See the module docstring."""

    def __init__(self, num_workers: int, env_config: dict[str, Any] | None = None, *,
                 item_timeout_s: float = 300.0, max_attempts: int = 2, warm: Sequence[str] = (),
                 startup_timeout_s: float = 600.0, max_env_errors_in_a_row: int = 8):
        if num_workers < 1:
            raise ValueError(f"EnvPool needs at least one worker, got num_workers={num_workers}")
        if item_timeout_s <= 0 or max_attempts < 1:
            raise ValueError("EnvPool item_timeout_s must be positive and max_attempts at least 1")
        self.env_config = dict(env_config or {})
        self.item_timeout_s = item_timeout_s
        self.max_attempts = max_attempts
        self.warm = tuple(warm)
        self.startup_timeout_s = startup_timeout_s
        self.max_env_errors_in_a_row = max_env_errors_in_a_row
        self.restarts = 0
        self._env_errors_in_a_row = 0
        self._last_env_error = ""
        self._ids = itertools.count()
        self._lock = threading.Condition()
        self._pending: collections.deque[int] = collections.deque()
        self._items: dict[int, tuple[Task, str]] = {}
        self._attempts: dict[int, int] = collections.defaultdict(int)
        self._finished: dict[int, Feedback] = {}
        self._closing = False
        self._wake_r, self._wake_w = os.pipe()
        self._workers = [self._new_worker(i) for i in range(num_workers)]
        self._thread = threading.Thread(target=self._dispatch, name="EnvPool-dispatch", daemon=True)
        self._thread.start()
        _POOLS.add(self)

    # ------------------------------------------------------------ caller side
    def submit(self, task: Task, code: str) -> int:
        """Queue one item; returns its id (ids increase in submission order)."""
        with self._lock:
            if self._closing:
                raise RuntimeError("EnvPool is closed")
            item_id = next(self._ids)
            self._items[item_id] = (task, code)
            self._pending.append(item_id)
        os.write(self._wake_w, b"x")
        return item_id

    def poll(self, timeout: float | None = 0.0, ids: Iterable[int] | None = None) -> list[tuple[int, Feedback]]:
        """Finished items not yet collected (of `ids`, if given), waiting up to `timeout` seconds
        (None: until at least one) for the first; in id order."""
        wanted = None if ids is None else set(ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                if self._env_errors_in_a_row >= self.max_env_errors_in_a_row:
                    raise EnvSetupError(
                        f"the last {self._env_errors_in_a_row} programs all failed inside the "
                        f"environment, not in their own code: {self._last_env_error}. Fix: "
                        f"that error names the setting or the missing piece; "
                        f"`python -m envs.check` shows what this machine lacks; "
                        f"`bash launch/setup.sh` installs it.")
                ready = sorted(i for i in self._finished if wanted is None or i in wanted)
                left = None if deadline is None else deadline - time.monotonic()
                if ready or (left is not None and left <= 0):
                    return [(i, self._finished.pop(i)) for i in ready]
                self._lock.wait(left)

    def results(self, ids: Sequence[int], ordered: bool = False) -> Iterator[tuple[int, Feedback]]:
        """Yield (id, Feedback) for each of `ids` as it finishes (or in the given order)."""
        waiting = list(ids)
        held: dict[int, Feedback] = {}
        while waiting:
            for item_id, feedback in self.poll(timeout=None, ids=[i for i in waiting if i not in held]):
                held[item_id] = feedback
            if ordered:
                while waiting and waiting[0] in held:
                    yield waiting[0], held.pop(waiting.pop(0))
            else:
                for item_id in [i for i in waiting if i in held]:
                    waiting.remove(item_id)
                    yield item_id, held.pop(item_id)

    def stream(self, items: Iterable[tuple[Task, str]], ordered: bool = False) -> Iterator[tuple[int, Feedback]]:
        """Submit every item, then yield (index in `items`, Feedback) as each finishes."""
        ids = [self.submit(task, code) for task, code in items]
        index = {item_id: i for i, item_id in enumerate(ids)}
        for item_id, feedback in self.results(ids, ordered=ordered):
            yield index[item_id], feedback

    def map(self, items: Iterable[tuple[Task, str]]) -> list[Feedback]:
        """Feedback for every item, in order (waits for all)."""
        return [feedback for _, feedback in self.stream(items, ordered=True)]

    @property
    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def close(self) -> None:
        """Stop dispatching and every worker; idempotent. Unfinished items are dropped."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=30)
        for worker in self._workers:
            try:
                worker.process.stdin.close()  # a clean exit: the worker closes its envs
            except OSError:
                pass
        end = time.monotonic() + 10
        for worker in self._workers:
            try:
                worker.process.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            worker.kill()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def __enter__(self) -> "EnvPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ dispatcher thread
    def _dispatch(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ, None)
        registered: dict[int, _Worker] = {}
        while True:
            with self._lock:
                if self._closing:
                    break
                self._assign()
            for worker in self._workers:  # (re)register replaced workers
                fd = worker.process.stdout.fileno()
                if registered.get(fd) is not worker:
                    if fd in registered:
                        selector.unregister(fd)
                    selector.register(fd, selectors.EVENT_READ, worker)
                    registered[fd] = worker
            now = time.monotonic()
            next_deadline = min((w.deadline for w in self._workers), default=float("inf"))
            for key, _ in selector.select(timeout=min(1.0, max(0.0, next_deadline - now))):
                if key.data is None:
                    os.read(self._wake_r, 4096)
                    continue
                worker = key.data
                chunk = os.read(key.fd, 1 << 20)
                if not chunk:
                    selector.unregister(key.fd)
                    del registered[key.fd]
                    self._replace(worker, "the worker process died")
                    continue
                for message in worker.take_messages(chunk):
                    if message == ("ready",):
                        worker.ready, worker.deadline = True, float("inf")
                    else:
                        self._finish(worker, *message)
            now = time.monotonic()
            for worker in list(self._workers):
                if now > worker.deadline:
                    fd = worker.process.stdout.fileno()
                    if registered.get(fd) is worker:
                        selector.unregister(fd)
                        del registered[fd]
                    self._replace(worker, f"the worker took longer than {self.item_timeout_s:g} s"
                                  if worker.ready else "the worker did not start")
        selector.close()

    def _assign(self) -> None:
        for worker in self._workers:
            if worker.ready and worker.item is None and self._pending:
                item_id = self._pending.popleft()
                task, code = self._items[item_id]
                self._attempts[item_id] += 1
                try:
                    worker.send(("item", item_id, task, code))
                except (BrokenPipeError, OSError):
                    self._pending.appendleft(item_id)
                    self._attempts[item_id] -= 1
                    continue  # its death is noticed through its closed stdout
                worker.item = item_id
                worker.deadline = time.monotonic() + self.item_timeout_s

    def _finish(self, worker: _Worker, item_id: int, feedback: Feedback) -> None:
        with self._lock:
            if worker.item == item_id and item_id in self._items:
                del self._items[item_id]
                self._attempts.pop(item_id, None)
                self._finished[item_id] = feedback
                env_error = feedback.error is not None and feedback.error.type == ENV_ERROR
                self._env_errors_in_a_row = self._env_errors_in_a_row + 1 if env_error else 0
                if env_error:
                    self._last_env_error = feedback.error.message
                self._lock.notify_all()
            worker.item, worker.deadline = None, float("inf")

    def _replace(self, worker: _Worker, why: str) -> None:
        worker.kill()
        self.restarts += 1
        with self._lock:
            item_id = worker.item
            if item_id is not None and item_id in self._items:
                if self._attempts[item_id] < self.max_attempts:
                    self._pending.appendleft(item_id)
                else:
                    del self._items[item_id]
                    self._attempts.pop(item_id, None)
                    self._finished[item_id] = Feedback.failure(
                        ExecError("WorkerCrash", f"{why} on this item on {self.max_attempts} attempts; "
                                                 "it was not judged"), reward_parts={"exec": 0.0})
                    self._lock.notify_all()
            if not self._closing:
                self._workers[self._workers.index(worker)] = self._new_worker(worker.index)

    def _new_worker(self, index: int) -> _Worker:
        return _Worker(index, self.env_config, self.warm, self.startup_timeout_s)


@atexit.register
def _close_pools() -> None:
    for pool in list(_POOLS):
        pool.close()


# ---------------------------------------------------------------- worker process
def _worker_main() -> None:
    from envs import isolation, registry
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # library prints must not corrupt the protocol stream
    protocol_in = os.fdopen(0, "rb")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the owner's to handle
    isolation.die_with_parent(os.getppid())
    live: dict[str, Any] = {}
    config: dict[str, Any] = {}

    def env_for(domain: str):
        if domain not in live:
            live[domain] = registry.make_env(domain, config.get(domain, {}))
        return live[domain]

    while (message := _read_message(protocol_in)) is not None:
        if message[0] == "config":
            _, config, warm = message
            for domain in warm:
                env_for(domain)
            protocol_out.write(_encode(("ready",)))
            protocol_out.flush()
            continue
        _, item_id, task, code = message
        try:
            feedback = env_for(task.domain).step(task, code)
        except Exception as err:  # noqa: BLE001 - an env bug or setup problem, reported per item
            feedback = Feedback.failure(ExecError(ENV_ERROR, f"the {task.domain} environment failed: "
                                                              f"{type(err).__name__}: {err}"[:2000]),
                                        reward_parts={"exec": 0.0})
        protocol_out.write(_encode((item_id, feedback)))
        protocol_out.flush()
    for env in live.values():
        env.close()


def _read_message(stream) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    body = stream.read(length)
    return None if len(body) < length else pickle.loads(body)


if __name__ == "__main__":
    _worker_main()
