"""Provides how an objective reaches a worker: by reference (a top-level function) or by value (cloudpickle,
for closures, lambdas and functions of a notebook, stdin or ``-c``), and the one line that says what cannot
be sent and how to fix it."""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tuitune.core.errors import ObjectiveError, reason_of


@dataclass(frozen=True)
class ObjectiveRef:
    """How a worker gets the objective: a function sent by reference or by value, or a factory it calls.

    Attributes:
        fn: the objective function: importable by its module and name, or (``by_value``) sent whole.
        factory: builds the objective in the worker: ``factory(*args, **kwargs)`` (presets).
        device_kw: the factory's keyword that receives the worker's device (``"cuda"`` when pinned).
        label: what errors call it (``"train:objective"``, ``"preset digits-mlp"``).
        by_value: ``fn`` is pickled with cloudpickle, its code and what it captures included (a closure, a
            lambda, a function typed at a prompt, in a notebook, on stdin or with ``python -c``).
    """

    fn: Callable[..., Any] | None = None
    factory: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    device_kw: str | None = None
    label: str = ""
    by_value: bool = False

    def build(self, device: str | None) -> Callable[..., Any]:
        if self.factory is None:
            assert self.fn is not None
            return self.fn
        kwargs = dict(self.kwargs)
        if self.device_kw is not None and device is not None:
            kwargs[self.device_kw] = device
        return self.factory(*self.args, **kwargs)


def _main_file() -> str | None:
    """The file a spawned process re-runs as ``__main__`` (None: it re-runs nothing: a prompt, ``-c``,
    stdin, a notebook). A ``__main__`` run as a module (``python -m``) is re-imported by name: it counts."""
    main = sys.modules.get("__main__")
    if main is None:
        return None
    if getattr(getattr(main, "__spec__", None), "name", None):
        return "<module>"
    path = getattr(main, "__file__", None)
    if not isinstance(path, str):
        return None
    from multiprocessing import process

    start = getattr(process, "ORIGINAL_DIR", None)  # where the parent started: spawn resolves a relative path there
    full = path if os.path.isabs(path) or start is None else os.path.join(start, path)
    return path if os.path.isfile(full) else None


@contextlib.contextmanager
def _spawnable_main(by_value: bool = False) -> Iterator[None]:
    """The parent's ``__main__`` shows no file while a process is spawned when the child must not re-run it.

    The spawn start method re-runs the parent's ``__main__`` in the child from ``__main__.__file__``
    (``multiprocessing.spawn._fixup_main_from_path``), or by name for ``python -m``. ``python - < script.py``
    names ``<stdin>``, which the child cannot open (a raw ``FileNotFoundError`` in the worker); and an
    objective sent by value needs nothing from ``__main__`` (cloudpickle sends what it uses from there), so
    re-running the script in every worker is only a trap (its unguarded code runs again). With no file and
    no spec spawn leaves the child's ``__main__`` alone, as it does for ``python -c`` and a notebook.
    """
    main = sys.modules.get("__main__")
    if main is None or (not by_value and _main_file() is not None):
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    if "__spec__" in saved:
        main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


def _by_reference(objective: Callable[..., Any]) -> bool:
    """Whether a worker process can import ``objective`` by its module and name."""
    qualname = getattr(objective, "__qualname__", "")
    module = getattr(objective, "__module__", None)
    if not qualname or "<" in qualname or module is None:
        return False
    if module == "__main__" and _main_file() is None:
        return False
    try:
        pickle.dumps(objective)
    except Exception:  # noqa: BLE001 - anything pickle cannot send by name goes by value
        return False
    return True


def objective_ref(objective: Callable[..., Any]) -> ObjectiveRef | None:
    """The reference a worker can load ``objective`` by, or None when it cannot be sent to a process.

    A function at the top level of an importable module (the running script's too) is sent by reference;
    any other (a lambda, a closure, a function from a notebook, stdin or ``python -c``) by value with
    cloudpickle, as Ray and joblib do. None only when what it captures cannot be pickled
    (``unsendable_reason`` says what).
    """
    ref = getattr(objective, "__tuitune_ref__", None)
    if isinstance(ref, ObjectiveRef):
        return ref
    label = f"{getattr(objective, '__module__', None)}:{getattr(objective, '__qualname__', repr(objective))}"
    if _by_reference(objective):
        return ObjectiveRef(fn=objective, label=label)
    if unsendable_reason(objective) is not None:
        return None
    return ObjectiveRef(fn=objective, label=label, by_value=True)


def _cloudpickle_error(value: Any) -> Exception | None:
    import cloudpickle

    try:
        cloudpickle.dumps(value)
    except Exception as e:  # noqa: BLE001 - what fails is what we report
        return e
    return None


def _captured(fn: Any) -> list[tuple[str, Any]]:
    """What a function takes with it when sent by value: its free variables, the globals it names, its
    defaults, the object of a bound method, the function and arguments of a ``functools.partial``."""
    import functools
    import inspect

    out: list[tuple[str, Any]] = []
    if isinstance(fn, functools.partial):
        return [("partial's function", fn.func), *((f"argument {i}", a) for i, a in enumerate(fn.args)),
                *fn.keywords.items()]
    if inspect.ismethod(fn):
        return [(f"{type(fn.__self__).__name__} object", fn.__self__), *_captured(fn.__func__)]
    if not inspect.isfunction(fn):
        return out
    try:
        cv = inspect.getclosurevars(fn)
    except (TypeError, ValueError):
        return out
    out += list(cv.nonlocals.items()) + list(cv.globals.items())
    out += [(f"default {i}", d) for i, d in enumerate(fn.__defaults__ or ())]
    out += list((fn.__kwdefaults__ or {}).items())
    return out


def unsendable_reason(objective: Callable[..., Any], depth: int = 0) -> str | None:
    """Why ``objective`` cannot be sent to a process by value, naming what it captures that cannot be
    pickled (``"it captures 'lock' (a _thread.lock: cannot pickle '_thread.lock' object)"``); None: it can."""
    error = _cloudpickle_error(objective)
    if error is None:
        return None
    for name, value in _captured(objective):
        inner = _cloudpickle_error(value)
        if inner is None:
            continue
        if depth < 4 and callable(value) and not isinstance(value, type):
            deeper = unsendable_reason(value, depth + 1)
            if deeper is not None and "captures" in deeper:
                return f"it captures {name!r}, which {deeper.removeprefix('it ')}"
        return f"it captures {name!r} (a {type(value).__module__}.{type(value).__qualname__}: {reason_of(inner)})"
    return f"it cannot be pickled ({reason_of(error)})"


# ---------------------------------------------------------------------------- the worker's side


def pickled_objective(ref: ObjectiveRef, into: str, hint: str) -> bytes:
    """The objective's reference as bytes for ``into`` (a worker process, a Ray actor), or an error saying what to do."""
    try:
        if ref.by_value:
            import cloudpickle

            return cloudpickle.dumps(ref)  # type: ignore[no-any-return]
        return pickle.dumps(ref)
    except Exception as e:  # noqa: BLE001 - any pickling failure is the same user error
        why = unsendable_reason(ref.fn) if ref.fn is not None else None
        raise ObjectiveError(
            f"the objective {ref.label or ref.fn!r} cannot be sent to {into} ({why or e}); {hint}"
        ) from None
