"""astra-worker's Python bridge: runs the handlers of ONE AstraFlow package version.

The Rust worker starts one bridge per package version, inside its sandbox, as

    python3 -I -B astra_bridge.py --package-dir DIR --shims DIR --max-message BYTES

and keeps it warm across tasks. One process per package version means the package
directory can sit first on `sys.path` without the Python worker's cross-package module
collisions (two packages with a top-level `adapters` module).

Protocol: JSON, one object per line, UTF-8.
  worker -> bridge, on stdin (fd 0):
    {"id": N, "entrypoint": "module:attr", "context": {...}}   run a task
    {"cancel": N}                                              cancel task N
    end of file                                                exit at once
  bridge -> worker, on fd 3 (never stdout, which handlers may print to):
    {"ready": {"pid": ..., "python": "3.11.7", "protocol": 1}}  once, at start
    {"fatal": "..."}                                           start-up failed; exits
    {"id": N, "feedback": {...}}                               zero or more per task
    {"id": N, "result": {...}}                                 terminal: the handler's dict
    {"id": N, "error": {"type", "message", "traceback"}}       terminal: the handler failed
    {"id": N, "cancelled": true}                               terminal: cancelled cleanly
    {"id": N, "uninterruptible": true}                         cancel impossible: task N is
                                                               in synchronous code; the
                                                               worker kills the bridge

Handlers run per spec §7.3: `h.async_run(ctx)` if callable, else `h.run(ctx)`, else `h(ctx)`,
awaiting awaitables. Coroutine functions run on the event loop; anything else runs on its
own thread so a blocking handler never stalls the loop or the other tasks.
"""

import argparse
import asyncio
import contextvars
import datetime
import enum
import importlib
import inspect
import json
import os
import pathlib
import platform
import sys
import threading
import traceback

PROTOCOL = 1
PROTOCOL_OUT_FD = 3


class Channel:
    """The protocol output: whole lines, written under a lock from any thread."""

    def __init__(self, fd, max_bytes):
        self._fd = fd
        self._max = max_bytes
        self._lock = threading.Lock()

    def encode(self, obj):
        """Serialises one message; raises ValueError/TypeError if it cannot be sent."""
        try:
            text = json.dumps(obj, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":"), default=_json_default)
            data = text.encode("utf-8") + b"\n"
        except UnicodeEncodeError as exc:
            raise ValueError(f"contains text that is not valid Unicode ({exc.reason})") from None
        except RecursionError:
            raise ValueError("is nested too deeply to serialise") from None
        if len(data) > self._max:
            raise ValueError(
                f"is {len(data)} bytes as JSON, more than the limit of {self._max}; "
                "return large data as artifacts or files in data_dir"
            )
        return data

    def write(self, data):
        with self._lock:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self._fd, view)
                except BrokenPipeError:
                    # The worker is gone: nobody can receive results any more.
                    os._exit(0)
                view = view[n:]

    def send(self, obj):
        self.write(self.encode(obj))


def _json_default(value):
    """What pydantic would serialise that json does not know."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump()
    raise TypeError(f"an object of type {type(value).__name__} is not JSON serialisable")


class TaskState:
    def __init__(self, task_id):
        self.id = task_id
        self.asyncio_task = None
        self.in_thread = False
        self.cancel_requested = False


def _error_body(exc):
    message = str(exc)
    if not message.strip():
        message = type(exc).__name__
    return {
        "type": type(exc).__name__,
        "message": message,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-8000:],
    }


class Bridge:
    def __init__(self, loop, channel, package_dir):
        self.loop = loop
        self.channel = channel
        self.package_dir = package_dir
        self.tasks = {}
        self.entrypoints = {}
        from worker.agent.feedback import FeedbackPublisher
        from worker.agent.runner import ExecutionContext
        self._publisher = FeedbackPublisher
        self._context = ExecutionContext

    # -- requests (always on the loop thread) ---------------------------------------------

    def on_line(self, line):
        try:
            msg = json.loads(line)
        except ValueError as exc:
            print(f"astra-bridge: ignoring an unreadable request ({exc})", file=sys.stderr)
            return
        if not isinstance(msg, dict):
            print("astra-bridge: ignoring a request that is not an object", file=sys.stderr)
        elif "cancel" in msg:
            self.cancel(msg["cancel"])
        elif "id" in msg:
            state = TaskState(msg["id"])
            if state.id in self.tasks:
                print(f"astra-bridge: ignoring duplicate task id {state.id}", file=sys.stderr)
                return
            self.tasks[state.id] = state
            state.asyncio_task = self.loop.create_task(self.run_task(state, msg))
            state.asyncio_task.add_done_callback(lambda _t, s=state: self.never_started(s))
        else:
            print("astra-bridge: ignoring a request without id or cancel", file=sys.stderr)

    def never_started(self, state):
        # run_task removes its id in `finally`; still present means the task was cancelled
        # before its coroutine ever ran, so nobody has replied yet.
        if self.tasks.pop(state.id, None) is not None:
            self.channel.send({"id": state.id, "cancelled": True})

    def cancel(self, task_id):
        state = self.tasks.get(task_id)
        if state is None:
            return  # already finished; its terminal message is on its way
        state.cancel_requested = True
        if state.in_thread:
            # Python cannot interrupt a thread: tell the worker, which kills this process.
            self.channel.send({"id": task_id, "uninterruptible": True})
        else:
            state.asyncio_task.cancel()

    # -- one task -------------------------------------------------------------------------

    def resolve(self, entrypoint):
        """`module:attr` with a dotted attr walked one getattr at a time (spec §7.2, but
        `Class.method` works too). Failures are not cached: a fixed file is picked up."""
        found = self.entrypoints.get(entrypoint)
        if found is not None:
            return found
        module_name, _, attr = entrypoint.partition(":")
        try:
            obj = importlib.import_module(module_name)
        except Exception as exc:
            raise ImportError(
                f"cannot import module {module_name!r} of entrypoint {entrypoint} from "
                f"{self.package_dir}: {type(exc).__name__}: {exc}"
            ) from exc
        path = module_name
        for part in attr.split(".") if attr else []:
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise AttributeError(
                    f"entrypoint {entrypoint}: {path} has no attribute {part!r}"
                ) from None
            path = f"{path}.{part}"
        if not (callable(obj) or any(
                callable(getattr(obj, name, None)) for name in ("async_run", "run"))):
            raise TypeError(
                f"entrypoint {entrypoint} is a {type(obj).__name__}: neither callable nor "
                "an object with an async_run or run method"
            )
        self.entrypoints[entrypoint] = obj
        return obj

    def make_context(self, state, raw):
        def emit(frame, task_id=state.id):
            self.channel.send({"id": task_id, "feedback": frame})

        metadata = raw.get("metadata") or {}
        return self._context(
            run_id=raw.get("run_id", ""),
            task_id=raw.get("task_id", ""),
            node_id=raw.get("node_id", ""),
            package_name=raw.get("package_name", ""),
            package_version=raw.get("package_version", ""),
            params=raw.get("params") or {},
            data_dir=pathlib.Path(raw.get("data_dir") or "."),
            tenant=raw.get("tenant", ""),
            feedback=self._publisher(raw.get("run_id", ""), raw.get("task_id", ""), emit),
            metadata=metadata,
            resource_refs=metadata.get("resource_refs"),
            node_type=raw.get("node_type"),
            worker_id=raw.get("worker_id"),
        )

    async def call(self, state, fn, ctx):
        """Coroutine functions on the loop; anything else on its own thread (it may block)."""
        if inspect.iscoroutinefunction(fn):
            result = fn(ctx)
        else:
            result = await self.in_thread(state, fn, ctx)
        while inspect.isawaitable(result):
            result = await result
        return result

    async def in_thread(self, state, fn, ctx):
        loop = self.loop
        future = loop.create_future()
        run_in = contextvars.copy_context()

        def settle(ok, value):
            if not future.done():
                (future.set_result if ok else future.set_exception)(value)

        def work():
            try:
                value = run_in.run(fn, ctx)
            except BaseException as exc:  # noqa: BLE001 - everything goes back to the task
                loop.call_soon_threadsafe(settle, False, exc)
            else:
                loop.call_soon_threadsafe(settle, True, value)

        state.in_thread = True
        try:
            threading.Thread(target=work, name=f"astra-task-{state.id}", daemon=True).start()
            return await future
        finally:
            state.in_thread = False

    async def invoke(self, state, handler, ctx):
        for name in ("async_run", "run"):
            method = getattr(handler, name, None)
            if callable(method):
                return await self.call(state, method, ctx)
        return await self.call(state, handler, ctx)

    async def run_task(self, state, msg):
        reply = None
        try:
            handler = self.resolve(str(msg.get("entrypoint", "")))
            ctx = self.make_context(state, msg.get("context") or {})
            result = await self.invoke(state, handler, ctx)
            if not isinstance(result, dict):
                raise TypeError(
                    f"handler must return a dict, got {type(result).__name__}"
                )
            try:
                reply = self.channel.encode({"id": state.id, "result": result})
            except (TypeError, ValueError) as exc:
                raise TypeError(f"handler result {exc}") from None
        except asyncio.CancelledError:
            if state.cancel_requested:
                reply = self.channel.encode({"id": state.id, "cancelled": True})
            else:
                reply = self.channel.encode({"id": state.id, "error": {
                    "type": "CancelledError",
                    "message": "handler was cancelled (asyncio.CancelledError) without a request",
                    "traceback": "",
                }})
        except BaseException as exc:  # noqa: BLE001 - SystemExit in a handler must not end the bridge
            body = _error_body(exc)
            try:
                reply = self.channel.encode({"id": state.id, "error": body})
            except (TypeError, ValueError):
                body["traceback"] = ""
                body["message"] = body["message"][:4000]
                reply = self.channel.encode({"id": state.id, "error": body})
        finally:
            self.tasks.pop(state.id, None)
            if reply is not None:
                self.channel.write(reply)


def _read_requests(stream, loop, bridge, done):
    """Runs on its own thread: the loop only ever sees whole lines."""
    for line in stream:
        loop.call_soon_threadsafe(bridge.on_line, line)
    loop.call_soon_threadsafe(done.set)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir", required=True)
    parser.add_argument("--shims", required=True)
    parser.add_argument("--max-message", type=int, default=16 << 20)
    args = parser.parse_args()

    # Take the protocol pipes away from fds 0 and 3, so handlers (and their children)
    # cannot read requests or write fake replies by accident; os.dup is non-inheritable.
    requests = os.fdopen(os.dup(0), "rb")
    channel = Channel(os.dup(PROTOCOL_OUT_FD), args.max_message)
    os.close(PROTOCOL_OUT_FD)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    # print() and C-level writes to fd 1 end up in the worker's log, never in the protocol.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.dont_write_bytecode = True

    # Shims are imported before the package directory joins sys.path, so a package that
    # ships its own top-level `worker` or `shared` cannot replace them.
    sys.path.insert(0, args.shims)
    package_dir = os.path.abspath(args.package_dir)
    if not os.access(os.path.join(package_dir, "manifest.json"), os.R_OK):
        channel.send({"fatal": (
            f"the package directory {package_dir} is not readable by the sandbox user "
            f"(uid {os.getuid()}); make packages_dir and every directory above it "
            "readable and searchable by others (chmod o+rx)"
        )})
        return 2

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    bridge = Bridge(loop, channel, package_dir)
    sys.path.insert(0, package_dir)

    done = asyncio.Event()
    reader = threading.Thread(
        target=_read_requests, args=(requests, loop, bridge, done),
        name="astra-bridge-requests", daemon=True,
    )
    reader.start()
    channel.send({"ready": {
        "pid": os.getpid(), "python": platform.python_version(), "protocol": PROTOCOL,
    }})
    loop.run_until_complete(done.wait())
    # End of requests: the worker has discarded this bridge. Do not wait for handler
    # threads (they may block forever); nobody is left to receive their results.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
