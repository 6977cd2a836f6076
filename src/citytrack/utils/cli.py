"""Command-line error reporting: a user's mistake is one `error:` line on stderr and exit status 1.

A malformed input file (`FormatError`: file and line), a missing file or folder, an impossible
config (a bad override, an unknown config group option, a target that cannot be built) is the
user's to fix, and a traceback only hides the one line that says what to fix. Anything else is a
bug and keeps its traceback. `HYDRA_FULL_ERROR=1` or `--debug` keeps the traceback for every error.

Hydra's `hydra.main` catches exceptions itself (`hydra._internal.utils.run_and_report`): it prints
composition errors over several lines and task errors as a stripped traceback, then exits 1; with
`HYDRA_FULL_ERROR=1` it re-raises instead. So `run_hydra_app` sets that variable for the duration of
the call, and composition errors reach it unprinted. An error inside the task function is also
announced by Hydra's `JobReturn` ("Error executing job with overrides ...") before it is re-raised, so
`report_task_errors` (under `@hydra.main`) reports it first and exits; in a multirun it re-raises,
and the sweeper records the failed job as usual.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from citytrack.data.formats.errors import FormatError
from citytrack.data.synth.world import SynthConfigError
from citytrack.multicam.calibration import CalibrationError
from citytrack.utils.allocator import keep_freed_memory

T = TypeVar("T")
DEBUG_FLAG = "--debug"
FULL_ERROR_ENV = "HYDRA_FULL_ERROR"

USER_ERRORS: tuple[type[BaseException], ...] = (
    FormatError,  # and VideoError: names the file and line
    CalibrationError,
    SynthConfigError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    HydraException,  # composition, overrides, instantiation
    OmegaConfBaseException,  # missing / unknown keys, bad interpolations
)
"""Exception types reported as one line (a bug's `TypeError` or `RuntimeError` keeps its traceback)."""


def is_user_error(err: BaseException) -> bool:
    return isinstance(err, USER_ERRORS)


def error_line(err: BaseException) -> str:
    """`error: <what> (<cause>)` on one line, with every line of Hydra's multi-line messages kept."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:  # the explicit `raise ... from` chain
        seen.add(id(current))
        parts.append(_one_line(current))
        current = current.__cause__
    return "error: " + " <- ".join(p for p in parts if p)


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    text = ""
    for line in (raw.strip() for raw in str(err).splitlines()):
        if not line or line.endswith(":") and line.count(":") == 1 and " " not in line:  # an empty `full_key:`
            continue
        text += line if not text else (" " if text.endswith(":") else "; ") + line
    return text or type(err).__name__


def wants_traceback(argv: list[str] | None = None) -> bool:
    """`--debug` on the command line (removed from it, so argparse and Hydra never see it) or `HYDRA_FULL_ERROR=1`."""
    args = sys.argv if argv is None else argv
    debug = DEBUG_FLAG in args
    while DEBUG_FLAG in args:
        args.remove(DEBUG_FLAG)
    return debug or os.environ.get(FULL_ERROR_ENV) == "1"


def report(err: BaseException) -> int:
    print(error_line(err), file=sys.stderr)
    return 1


_debug = os.environ.get(FULL_ERROR_ENV) == "1"  # set by run_hydra_app from --debug / HYDRA_FULL_ERROR


def report_task_errors(task: Callable[[Any], T]) -> Callable[[Any], T]:
    """Decorate a Hydra task function: a user error raised inside it is one line and exit status 1."""

    @functools.wraps(task)
    def wrapper(cfg: Any) -> T:
        try:
            return task(cfg)
        except Exception as err:
            if _debug or not is_user_error(err) or _in_multirun():
                raise
            raise SystemExit(report(err)) from None

    return wrapper


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_hydra_app(main: Callable[[], Any]) -> None:
    """Call a `@hydra.main` function; a user error exits 1 after one line on stderr."""
    global _debug
    keep_freed_memory()
    debug = _debug = wants_traceback()
    previous = os.environ.get(FULL_ERROR_ENV)
    os.environ[FULL_ERROR_ENV] = "1"  # Hydra re-raises instead of printing its own report
    try:
        main()
    except Exception as err:
        if debug or not is_user_error(err):
            raise
        sys.exit(report(err))
    finally:
        if previous is None:
            os.environ.pop(FULL_ERROR_ENV, None)
        else:
            os.environ[FULL_ERROR_ENV] = previous


def run_cli(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Call a `python -m citytrack...` entry `main(argv) -> exit status`, reporting user errors in one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = wants_traceback(args)
    keep_freed_memory()
    try:
        return main(args) or 0
    except Exception as err:
        if debug or not is_user_error(err):
            raise
        return report(err)
