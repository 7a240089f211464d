"""Process-side loop of the local-process executor: one warm Lambda "container".

Run by the function's own Python (CG_LAMBDA_PYTHON), not LocalStack's, so it uses the standard library
only. It imports the `_HANDLER` once, then answers invoke requests arriving on the socket whose file
descriptor is argv[1]. Frames are a 4-byte big-endian length followed by UTF-8 JSON. The handler's
stdout/stderr go to the executor, which turns them into the invocation's logs.

Usage: python runner.py <socket-fd> <code-dir> [<extra sys.path entry> ...]
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import socket
import sys
import time
import traceback

# Run as a script: its own directory is first on sys.path, so the shared framing module is found.
from framing import END_MARKER, recv_frame, send_frame  # noqa: E402


def _user_traceback(exc: BaseException):
    """The exception's traceback without this runner's own frames (the AWS runtime hides its frames too)."""
    tb = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) == os.path.abspath(__file__):
        tb = tb.tb_next
    return tb


def max_memory_used_kb() -> int:
    """Peak RSS of this process. VmHWM, because ru_maxrss survives exec and reports LocalStack's own peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def error_payload(exc: BaseException, error_type: str | None = None, message: str | None = None) -> dict:
    """The error document of the AWS Python runtime: errorMessage, errorType, requestId, stackTrace."""
    frames = traceback.extract_tb(_user_traceback(exc))
    return {
        "errorMessage": message if message is not None else str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": [line for line in traceback.format_list(frames)],
    }


class LambdaContext:
    """The subset of the AWS Python runtime's context object that handlers and libraries use."""

    def __init__(self, request_id: str, invoked_function_arn: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        # A string, as in the AWS runtime.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r})"


def load_handler(spec: str):
    """Import `module.function` (module may be a path with slashes) as the Lambda runtime does.

    Returns (handler, None) or (None, error document).
    """
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as exc:
        return None, error_payload(exc, "Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        return None, error_payload(exc, "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}")
    except ImportError as exc:
        return None, error_payload(exc, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    except BaseException as exc:  # noqa: BLE001 - an init error of any kind is reported, not raised
        return None, error_payload(exc)
    handler = getattr(module, function_name, None)
    if handler is None:
        exc = AttributeError(function_name)
        return None, error_payload(
            exc, "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        )
    return handler, None


def flush_output(request_id: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    sys.stdout.write(f"{END_MARKER}{request_id}\n")
    sys.stdout.flush()


def main() -> int:
    sock = socket.socket(fileno=int(sys.argv[1]))
    code_dir = sys.argv[2]
    # The runner's own directory is not the function's business; the code dir comes first, as /var/task does.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    sys.path[:0] = [code_dir, *sys.argv[3:]]
    os.chdir(code_dir)

    handler, init_error = load_handler(os.environ.get("_HANDLER", ""))
    flush_output("init")
    if init_error is not None:
        send_frame(sock, {"type": "init_error", "error": init_error})
        return 1
    send_frame(sock, {"type": "ready"})

    while True:
        request = recv_frame(sock)
        if request is None:  # the executor (or LocalStack) is gone: do not linger as an orphan
            return 0
        request_id = request["request_id"]
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id") or ""
        context = LambdaContext(request_id, request["invoked_function_arn"], request["deadline_ms"])
        response: dict
        try:
            event = json.loads(request["payload"]) if request["payload"] else {}
            result = handler(event, context)
            try:
                response = {"type": "result", "ok": True, "payload": json.dumps(result)}
            except (TypeError, ValueError) as exc:
                response = {
                    "type": "result",
                    "ok": False,
                    "error": error_payload(exc, "Runtime.MarshalError", f"Unable to marshal response: {exc}"),
                }
        except Exception as exc:  # noqa: BLE001 - SystemExit ends the process, as it does on AWS (Runtime.ExitError)
            err = error_payload(exc)
            err["requestId"] = request_id
            # The AWS runtime logs the error document too.
            print(f"[ERROR] {err['errorType']}: {err['errorMessage']}", file=sys.stderr)
            traceback.print_exception(type(exc), exc, _user_traceback(exc), file=sys.stderr)
            response = {"type": "result", "ok": False, "error": err}
        response["max_rss_kb"] = max_memory_used_kb()
        flush_output(request_id)
        send_frame(sock, response)


if __name__ == "__main__":
    sys.exit(main())
