"""mossforge's error base and what the command line makes of any error.

Every error a user can act on derives from `MossforgeError`: its message names the file, key,
endpoint, host or folder, and says what to do; its `exit_code` says what happened. The CLI has one
handler (`report`) at its entry point: one or two lines on stderr and that exit code; the full
traceback only with `--debug`, or in a log file the message names.

Exit codes (the README lists them too):

| code | meaning |
|------|---------|
| 0    | done (a version published, or a command did its work) |
| 1    | failed: a run whose stage failed (too many model calls failed), a push to the Hub that failed, an unexpected error |
| 2    | bad input: a config, a file, a column, an argument; nothing was done |
| 3    | an endpoint is not usable (rejected key, unknown model, host not reachable), or the Hugging Face token cannot push: found before any stage or upload |
| 4    | nothing to publish: the run ended with zero items and the config does not allow empty versions |
| 5    | the dataset folder is locked by another run (with `--no-wait`) |
| 6    | network: a host could not be reached |
| 130  | interrupted by Ctrl-C (SIGINT) before it finished |
| 143  | stopped by SIGTERM (`timeout`, `docker stop`, a scheduler) before it finished |
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path


class MossforgeError(Exception):
    """An error with a message a user can act on, and the exit code that says what happened.

    `wrapper`: the error only says *where* another one happened (a failed batch): when what it
    wraps is a mossforge error, that one is reported (its message, its exit code); anything else
    it wraps gets its traceback written to a log file, as an unexpected error does."""

    exit_code = 1
    wrapper = False


class InputError(MossforgeError, ValueError):
    """Bad input: a file, a column, an argument (the message names it)."""

    exit_code = 2


class PreflightError(MossforgeError):
    """An endpoint the config uses cannot be used (key rejected, model unknown, host unreachable)."""

    exit_code = 3


class StageFailedError(MossforgeError):
    """A stage whose model calls failed (all, or more than the configured share): nothing published."""

    exit_code = 1


class EmptyVersionError(MossforgeError):
    """A run that would publish a version with no items, which the config does not allow."""

    exit_code = 4


class LockBusyError(MossforgeError):
    """Another run holds the dataset folder's lock."""

    exit_code = 5


class RunInterrupted(MossforgeError):
    """Ctrl-C (SIGINT) or SIGTERM stopped a command before it finished: 130 or 143, 128 + the
    signal's number, as a shell reports a process the signal ended."""

    exit_code = 130

    def __init__(self, message: str, signal_number: int = 2) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number


class NetworkError(MossforgeError):
    """A host that could not be reached."""

    exit_code = 6


def network_host(error: BaseException) -> str | None:
    """The host of a connection error (httpx, requests, urllib3), if `error` is one."""
    if isinstance(error, BrokenPipeError):  # (a ConnectionError to Python: a pipe, not a host)
        return None
    names = {cls.__name__ for cls in type(error).__mro__}
    if not names & {"ConnectError", "ConnectTimeout", "ConnectionError", "NewConnectionError",
                    "NameResolutionError", "MaxRetryError", "APIConnectionError"}:
        return None
    try:
        request = getattr(error, "request", None)  # httpx raises when the error has no request
    except RuntimeError:
        request = None
    url = getattr(request, "url", None)
    if url is not None:
        return str(getattr(url, "host", None) or url)
    return getattr(error, "host", None) or "the host"


def _own(error: BaseException) -> MossforgeError | None:
    """The mossforge error that speaks for `error`: the first in its chain, past wrappers that
    wrap another mossforge error."""
    found = None
    for link in _chain(error):
        if isinstance(link, MossforgeError):
            found = link
            if not link.wrapper:
                return link
    return found


def describe(error: BaseException) -> tuple[str, int]:
    """(one or two lines for the user, exit code) for any error."""
    own = _own(error)
    if own is not None:
        return str(own), own.exit_code
    for link in _chain(error):
        host = network_host(link)
        if host is not None:
            return (f"could not reach {host} ({type(link).__name__}: {str(link)[:200]}); check the network "
                    "connection (and HF_ENDPOINT, a proxy or PREFECT_API_URL if set; for 127.0.0.1, "
                    "whether the local Prefect server still runs: `mossforge server status`), then run the "
                    "command again"), NetworkError.exit_code
    for link in _chain(error):
        if isinstance(link, PermissionError):
            where = link.filename or "a file"
            if link.filename and os.path.exists(link.filename) and not os.access(link.filename, os.R_OK):
                return (f"permission denied: {where} cannot be read; fix its permissions or give a file "
                        "you can read"), InputError.exit_code
            return (f"permission denied: {where} cannot be written; choose a folder you can write "
                    "(--outputs, or the --out a command writes to) or fix its permissions"), InputError.exit_code
    return f"{type(error).__name__}: {error}", 1


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def debug_enabled() -> bool:
    return os.environ.get("MOSSFORGE_DEBUG", "") not in ("", "0", "false")


def write_log(error: BaseException) -> Path | None:
    """The full traceback in a log file (for errors that are not ours); its path, or None."""
    try:
        handle, name = tempfile.mkstemp(prefix="mossforge-error-", suffix=".log")
        with os.fdopen(handle, "w", encoding="utf-8") as log:
            log.write(f"mossforge {' '.join(sys.argv[1:])}\n\n")
            log.write("".join(traceback.format_exception(error)))
        return Path(name)
    except OSError:
        return None


def report(error: BaseException, print_line) -> int:
    """Print what went wrong with `print_line(str)` and return the exit code. Errors that are not
    mossforge's own (a bug, most likely) get their traceback written to a log file it names."""
    message, code = describe(error)
    own = _own(error)
    if own is None or own.wrapper:
        log = write_log(error)
        if log is not None:
            message += f"\n(full traceback in {log}; `mossforge --debug <command> …` shows it here)"
    print_line(message)
    return code


class _HideOwnErrors(logging.Filter):
    """Drops log records that carry a mossforge error: the CLI's handler reports it, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and any(isinstance(e, MossforgeError) for e in _chain(error)):
            return False
        message = record.getMessage() if record.levelno >= logging.ERROR else ""
        if "Crash detected! Execution was aborted by a" in message:  # (an interrupt or termination signal)
            return False  # Ctrl-C or SIGTERM: the CLI says it in one line (the run shows Crashed in the UI)
        if "Task run cancelled by the task runner" in message:  # the queued tasks a Ctrl-C cancelled
            return False
        return not any(name in message for name in _OWN_ERROR_NAMES)


class _ShortenOwnErrors(logging.Filter):
    """Keeps a record that carries a mossforge error but drops its traceback: with no CLI around
    the run (a served run), the log is where the user reads what went wrong, and a mossforge
    error's message already says it. A wrapper around anything else (a bug) keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        own = _own(error) if error is not None else None
        if own is not None and not own.wrapper:
            record.exc_info, record.exc_text = None, None
        return True


_OWN_ERROR_NAMES: tuple[str, ...] = ()


def hide_own_errors_in_logs(loggers=("prefect.flow_runs", "prefect.task_runs")) -> None:
    """Keep an orchestrator's loggers from printing a traceback for an error the CLI reports in
    one line (unless --debug)."""
    global _OWN_ERROR_NAMES
    if debug_enabled():
        return
    # as Prefect writes them: a state's repr ("RunInterrupted(...)") or its message ("... encountered an
    # exception RunInterrupted: ..."; not a bare "NetworkError: ", which another library's error may be)
    _OWN_ERROR_NAMES = tuple(pattern for cls in _subclasses(MossforgeError)
                             for pattern in (f"{cls.__name__}(", f"exception {cls.__name__}: "))
    _add_filter(_HideOwnErrors, loggers)


def shorten_own_errors_in_logs(loggers=("prefect.flow_runs", "prefect.task_runs")) -> None:
    """For a run no CLI reports (a served run): a mossforge error is logged as its one-line
    message, in the terminal and in the UI's logs, without Prefect's traceback (unless
    MOSSFORGE_DEBUG)."""
    if not debug_enabled():
        _add_filter(_ShortenOwnErrors, loggers)


def _add_filter(kind: type[logging.Filter], loggers) -> None:
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):  # once per process
            logger.addFilter(kind())


def _subclasses(cls):
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)
