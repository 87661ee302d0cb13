"""Worker processes that never outlive the process that started them, and a pool of them that
stops one task at its time or memory limit without disturbing the others (``WorkerPool``).

A ``kill -9`` of ``docmill ingest`` cannot run any clean-up, and a worker busy with a large
document would keep running (and holding its memory) until the document is done. On Linux the
kernel sends the worker SIGKILL when its parent dies (``PR_SET_PDEATHSIG``); the parent id is
checked again afterwards because the parent may already have died while the worker started.

Workers start from a fork server (``multiprocessing``'s ``forkserver``) that has imported the
parsers once (``preload``): a spawned interpreter paid those imports (seconds of CPU) for every
worker of every run, and a pool replaces a worker each time one is killed at its limit. The
fork server is single-threaded when it forks, so forking it is safe even though the parent
holds threads; it exits when the parent does, and its workers follow (parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from typing import Any

from docmill.errors import FileLimitExceeded, PartitionFailed

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Process-pool initializer: ``ProcessPoolExecutor(initializer=die_with_parent,
    initargs=(os.getpid(),))``. A no-op where the kernel offers no parent-death signal.

    ``parent_pid`` is the process that wants the worker; the direct parent may be a fork server
    that lives exactly as long as it, so both must still be there."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() == 1 or not _alive(parent_pid):
        os._exit(1)  # the parent is already gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_context(preload: Sequence[str] = ()) -> Any:
    """The start method of every docmill worker: a fork server that imported ``preload``, or
    spawn where there is no fork server (not POSIX)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    if preload:
        # Only read when the fork server starts (once per process); later lists are ignored.
        ctx.set_forkserver_preload(list(preload))
    return ctx


# -- a process pool that can stop one task -------------------------------------------------------
#
# ``ProcessPoolExecutor`` cannot: it does not say which worker runs which task, and a worker
# killed from outside breaks the whole pool (every queued and running file fails). Here each
# worker has its own pipe, the pool knows what it runs, since when, and how much memory it held
# when the task started; a manager thread watches every busy worker several times a second and,
# past the time or memory limit, kills it (with its children, e.g. tesseract), fails that one
# future with the reason, and starts a replacement. The rest of the batch is untouched.
#
# Why a watchdog on RSS rather than RLIMIT_AS: the worker's address space is mostly
# reservations (ONNX Runtime, OpenBLAS and glibc arenas reserve gigabytes they never touch), so
# a cap on it either breaks imports or must be so loose that it bounds nothing; and it would
# not cover child processes (tesseract, pandoc). RSS of the process tree is what the machine
# actually loses. The overshoot is bounded by how much a parser can allocate in one poll.

POLL_SECONDS = 0.1


class WorkerPool:
    """``submit(fn, *args) -> Future`` on ``workers`` spawned processes, with per-task limits.

    ``timeout_s`` (wall clock) and ``memory_mb`` (RSS of the worker and its children above what
    it held when the task started) of 0 mean no limit. ``warm_up`` runs once in each worker
    before it takes tasks, so the imports it does are not charged to the first file;
    ``preload`` names modules the fork server imports once for all workers.
    """

    def __init__(
        self,
        workers: int,
        *,
        timeout_s: float = 0.0,
        memory_mb: int = 0,
        warm_up: Callable[[], None] | None = None,
        poll_s: float = POLL_SECONDS,
        preload: Sequence[str] = (),
    ) -> None:
        self._ctx = worker_context(preload)  # never a plain fork: the parent may hold threads
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._warm_up = warm_up
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._queue: deque[_Task] = deque()
        self._closed = False
        self._failed_starts = 0
        self._wake_r, self._wake_w = os.pipe()
        self._size = max(1, workers)
        self._workers = [self._start_worker() for _ in range(self._size)]
        self._thread = threading.Thread(target=self._manage, name="docmill-worker-pool", daemon=True)
        self._thread.start()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def submit(self, fn: Callable[..., Any], *args: Any, first: bool = False) -> Future[Any]:
        """Queue ``fn(*args)``; ``first`` puts it ahead of everything queued (work that lets the
        caller finish a file, so its memory is released before more files start)."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            task = _Task(future, fn, args)
            if first:
                self._queue.appendleft(task)
            else:
                self._queue.append(task)
        self._wake()
        return future

    def shutdown(self) -> None:
        """Cancel what has not started, stop every worker (busy ones included) and wait."""
        with self._lock:
            self._closed = True
        self._wake()
        self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- manager thread ------------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _start_worker(self) -> _Worker:
        ours, theirs = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main, args=(theirs, os.getpid(), self._warm_up), name="docmill-worker", daemon=True
        )
        process.start()
        theirs.close()
        return _Worker(process=process, conn=ours)

    def _manage(self) -> None:
        try:
            while True:
                with self._lock:
                    closed = self._closed
                if closed:
                    break
                self._dispatch()
                self._wait_and_collect()
                self._watch()
        except BaseException as exc:  # no future may wait for ever on a dead manager
            logger.exception("the worker pool's manager failed")
            self._fail_all(exc)
        finally:
            self._stop_all()

    def _dispatch(self) -> None:
        with self._lock:
            waiting = len(self._queue)
        # A replacement starts only when there is work for it: one that would only be killed at
        # shutdown would cost a spawn and a warm-up for nothing.
        if waiting and len(self._workers) < self._size:
            self._workers.append(self._start_worker())
        for worker in list(self._workers):
            if worker.state != "idle":
                continue
            task = self._next_task()
            if task is None:
                return
            worker.baseline = _tree_rss(worker.process.pid)
            worker.peak = worker.baseline
            try:
                worker.conn.send((task.fn, task.args))
            except (OSError, ValueError):
                # The worker died while idle: not this task's doing, so it waits for the next.
                with self._lock:
                    self._queue.appendleft(task)
                self._replace(worker, None)
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. an argument that cannot be pickled
                task.future.set_exception(exc)
                continue
            worker.task, worker.state, worker.started = task, "busy", time.monotonic()

    def _next_task(self) -> _Task | None:
        with self._lock:
            while self._queue:
                task = self._queue.popleft()
                if task.running or task.future.set_running_or_notify_cancel():
                    task.running = True
                    return task
        return None

    def _wait_and_collect(self) -> None:
        watched: list[Any] = [self._wake_r]
        for worker in self._workers:
            watched += [worker.conn, worker.process.sentinel]
        ready = set(mp_connection.wait(watched, timeout=self._poll_s))
        if self._wake_r in ready:
            os.read(self._wake_r, 4096)
        for worker in list(self._workers):
            if worker.conn in ready:
                try:
                    kind, value = worker.conn.recv()
                except (EOFError, OSError):
                    self._crashed(worker)
                    continue
                self._received(worker, kind, value)
            elif worker.process.sentinel in ready:
                self._crashed(worker)

    def _received(self, worker: _Worker, kind: str, value: Any) -> None:
        if kind == "ready":
            worker.state = "idle"
            return
        task, worker.task, worker.state = worker.task, None, "idle"
        self._failed_starts = 0
        if task is None:
            return
        if kind == "ok":
            task.future.set_result(value)
        else:
            task.future.set_exception(value)

    def _crashed(self, worker: _Worker) -> None:
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if worker.task is None:
            self._failed_starts += 1
            if self._failed_starts > 3 * self._size:
                raise RuntimeError(f"worker processes keep dying before taking a file ({how})")
        self._replace(
            worker,
            PartitionFailed(
                f"the worker process died while processing this file ({how}; out of memory, or a parser crash)"
            ),
        )

    def _watch(self) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.state != "busy":
                continue
            if self.timeout_s and now - worker.started > self.timeout_s:
                self._replace(
                    worker,
                    FileLimitExceeded(
                        f"exceeded the per-file time limit ({self.timeout_s:g} s); the worker was stopped "
                        "(raise --file-timeout if the file is legitimate)"
                    ),
                )
                continue
            if not self.memory_mb:
                continue
            rss = _tree_rss(worker.process.pid)
            worker.peak = max(worker.peak, rss)
            grown = (rss - worker.baseline) / (1024 * 1024)
            if grown > self.memory_mb:
                self._replace(
                    worker,
                    FileLimitExceeded(
                        f"exceeded the per-file memory limit ({self.memory_mb} MB): the worker had grown by "
                        f"{grown:.0f} MB and was stopped (raise --file-memory-mb if the file is legitimate)"
                    ),
                )

    def _replace(self, worker: _Worker, error: BaseException | None) -> None:
        """Kill ``worker`` (and its children) and fail its task with ``error``."""
        _kill_tree(worker.process)
        worker.conn.close()
        if worker.task is not None and error is not None:
            worker.task.future.set_exception(error)
        self._workers.remove(worker)  # _dispatch starts a replacement when work is waiting

    def _fail_all(self, exc: BaseException) -> None:
        with self._lock:
            self._closed = True
            queued, self._queue = list(self._queue), deque()
        for task in queued:
            if task.running or task.future.set_running_or_notify_cancel():
                task.future.set_exception(exc)
        for worker in self._workers:
            if worker.task is not None and not worker.task.future.done():
                worker.task.future.set_exception(exc)
                worker.task = None

    def _stop_all(self) -> None:
        with self._lock:
            queued, self._queue = list(self._queue), deque()
        for task in queued:
            if task.running:
                task.future.set_exception(RuntimeError("the worker pool was shut down"))
            else:
                task.future.cancel()
        for worker in self._workers:
            if worker.state == "idle":
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(None)  # a clean exit
        deadline = time.monotonic() + 5
        for worker in self._workers:
            if worker.state == "idle":
                worker.process.join(timeout=max(0.1, deadline - time.monotonic()))
            _kill_tree(worker.process)
            worker.conn.close()
            if worker.task is not None and not worker.task.future.done():
                # Still running at shutdown: only tasks whose results nobody waits for any more.
                worker.task.future.set_exception(RuntimeError("the worker pool was shut down"))


@dataclass
class _Task:
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    running: bool = False  # set_running_or_notify_cancel() was called (it may be only once)


@dataclass
class _Worker:
    process: Any  # multiprocessing.process.BaseProcess
    conn: Any  # multiprocessing.connection.Connection
    state: str = "starting"  # starting -> idle <-> busy
    task: _Task | None = None
    started: float = 0.0
    baseline: int = 0
    peak: int = 0


def _worker_main(conn: Any, parent_pid: int, warm_up: Callable[[], None] | None) -> None:
    # Its own process group: whatever a parser starts (tesseract, pandoc, LibreOffice) can be
    # stopped and killed with the worker in one call, with no window for a late fork to escape.
    with contextlib.suppress(OSError):
        os.setpgrp()
    die_with_parent(parent_pid)
    # A forked worker's direct parent is the fork server, which lives until every holder of its
    # "alive" pipe has gone, and each worker holds one: the worker itself must notice that the
    # process it works for died (kill -9 runs no clean-up), and take its process group along.
    threading.Thread(target=_exit_with, args=(parent_pid,), name="docmill-parent-watch", daemon=True).start()
    # Ctrl-C reaches the whole foreground process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if warm_up is not None:
        warm_up()
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, args = message
        try:
            reply: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, reported per file
            reply = ("error", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - a result or an error that cannot be pickled
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}"[:300])))
        del message, fn, args, reply
        _return_free_heap()


def _return_free_heap() -> None:
    """Hand the heap a finished task freed back to the OS. glibc keeps it otherwise, so a worker
    that once parsed a large file stays that large (measured: ~300 MB above its start after the
    corpus), which counts against the machine and against the next file's memory limit."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _load_malloc_trim() -> Callable[[int], int] | None:
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_malloc_trim = _load_malloc_trim()


def _exit_with(parent_pid: int, every_s: float = 0.5) -> None:
    while _alive(parent_pid) and os.getppid() != 1:
        time.sleep(every_s)
    if os.getpgrp() == os.getpid():  # its own group (see _worker_main): parsers' children too
        with contextlib.suppress(OSError):
            os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc; psutil elsewhere)."""
    try:
        kids: list[int] = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids += [int(k) for k in fh.read().split()]
        return kids
    except OSError:
        try:
            import psutil

            return [p.pid for p in psutil.Process(pid).children()]
        except Exception:  # noqa: BLE001 - gone, or no psutil: no children to count
            return []


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        out += kids
        todo += kids
    return out


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        try:
            import psutil

            return int(psutil.Process(pid).memory_info().rss)
        except Exception:  # noqa: BLE001 - the process is gone
            return 0


def _tree_rss(pid: int | None) -> int:
    """Resident memory of ``pid`` and every process below it, in bytes."""
    if pid is None:
        return 0
    return sum(_rss(p) for p in [pid, *_descendants(pid)])


def _kill_tree(process: Any) -> None:
    """Kill a worker, its process group and any descendant that left the group."""
    pid = process.pid
    if pid is not None and process.is_alive():
        # Freeze the group first, so nothing forks between listing the children and the kill;
        # a worker not yet in its own group has no group of that id (the call fails harmlessly).
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGSTOP)
        for child in _descendants(pid):  # before the worker: once it dies they are orphans
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            process.kill()
    process.join(timeout=5)
