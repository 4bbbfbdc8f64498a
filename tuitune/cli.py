"""Provides the command line (docs/DESIGN.md 4.2); with no subcommand it opens the TUI."""

from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _whole_at_least(low: int):  # noqa: ANN202 - an argparse type
    """An argparse type: a whole number >= ``low``, with a one-line error otherwise."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be {low} or more")
        return v

    return parse


def _seed(text: str) -> int:
    """An argparse type: a seed torch and NumPy both take (0 to 2**32 - 1)."""
    v = _whole_at_least(0)(text)
    if v > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"{text!r} is too large; give a seed from 0 to {2**32 - 1}")
    return v


def _seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds, e.g. 600")
    return v


_positive_int = _whole_at_least(1)


def _epochs(n: int) -> str:
    """``1 epoch``, ``5 epochs``."""
    from tuitune.core.text import plural

    return plural(n, "epoch")


def _header_first() -> dict[str, Any]:
    """A rich Table's style whose first line is its header row (`tuitune sessions | head -1` names the
    columns), a rule under it, no border above."""
    from rich import box

    return {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False}


def _base(text: str) -> str | int:
    return int(text) if text.isdigit() else text


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, with a pointer to --help (not the whole usage first)."""

    def error(self, message: str) -> Any:  # argparse's hook; never returns
        import difflib

        if message.startswith("unrecognized arguments:"):
            known = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            for word in message.split(":", 1)[1].split():
                # 0.75, not difflib's 0.6: --seeed finds --seed, while a parameter typed as a flag (--units)
                # is not taken for an unrelated option (--fuse) and gets the --set hint below
                close = difflib.get_close_matches(word.split("=")[0], known, n=1, cutoff=0.75)
                if word.startswith("-") and close:
                    message += f" (did you mean {close[0]}?)"
                    break
                if word.startswith("--") and any(a.dest == "set" for a in self._actions):
                    message += f" (a parameter? fix it with --set {word[2:].split('=')[0]}=VALUE)"
                    break
        self.exit(EXIT_USAGE, f"tuitune: error: {self.prog.removeprefix('tuitune ')}: {message}; "
                              f"see: {self.prog} --help\n" if self.prog != "tuitune" else
                              f"tuitune: error: {message}; see: tuitune --help\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="tuitune",
        description="A terminal control room for hyperparameter tuning of PyTorch models. "
        "With no command, opens the TUI.",
    )
    p.add_argument("--db", help="database file (default: $TUITUNE_DB or the user data directory)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    from tuitune import __version__

    p.add_argument("--version", action="version", version=f"tuitune {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--db", default=argparse.SUPPRESS, help="database file")
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")

    r = sub.add_parser("run", help="start a session of a preset or of your own TOML file")
    r.add_argument("preset", metavar="PRESET|FILE.toml")
    from tuitune.core.search.strategies import STRATEGY_NAMES

    # Checked by strategy_class (one line naming the valid ones), not by argparse choices (the full usage).
    r.add_argument("--strategy", default="random", metavar="{" + ",".join(STRATEGY_NAMES) + "}",
                   help="how configs are chosen (default random)")
    r.add_argument("--trials", type=_positive_int, help="trials to run (random, bayes: default 20)")
    r.add_argument("--max-epochs", type=_positive_int, help="epochs a trial may reach (default: the preset's)")
    r.add_argument("--seed", type=_seed, default=0)
    r.add_argument("--session", help="the session's name (default: a generated one)")
    r.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the best available)")
    r.add_argument("--data-dir", help="where datasets live (default: $TUITUNE_DATA or the user cache)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="manual: the one change of this run; other strategies: fix a parameter (repeatable)")
    r.add_argument("--base", type=_base, help="manual: the base config (defaults, best, or a trial number)")
    r.add_argument("--headless", action="store_true", help="no TUI: progress bars and lines")
    g = r.add_argument_group("strategy options")
    from tuitune.core.search.strategies import STRATEGY_OPTIONS

    for opt in STRATEGY_OPTIONS:
        if opt.choices:
            g.add_argument(opt.flag, choices=opt.choices, help=f"{', '.join(opt.strategies)}: {opt.help}")
        else:
            g.add_argument(opt.flag, type=_positive_int if opt.positive else int,
                           help=f"{', '.join(opt.strategies)}: {opt.help}")
    r.add_argument("--prior", metavar="defaults",
                   help="defaults: the preset's [defaults] are the priors of the searched parameters "
                        "(bayes weights its search by them, random, hyperband and asha draw around them)")
    r.add_argument("--warm-start", action="append", metavar="SESSION",
                   help="an earlier session of this database: its trials inform the model and its best configs "
                        "run first (repeatable)")
    _budget(r)
    _where(r)
    _run_limits(r)
    common(r)

    s = sub.add_parser("resume", help="continue a session where it stopped")
    s.add_argument("name")
    s.add_argument("--trials", type=_positive_int, help="the session's total trials, as in run (raises its budget to N)")
    s.add_argument("--more", type=_positive_int, metavar="N", help="N more trials than its budget")
    s.add_argument("--device")
    s.add_argument("--data-dir")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="manual: the next change")
    s.add_argument("--base", type=_base, help="manual: the base of the next change")
    s.add_argument("--headless", action="store_true")
    _budget(s, resume=True)
    _where(s)
    _run_limits(s)
    common(s)

    ss = sub.add_parser("sessions", help="list the sessions in the database")
    ss.add_argument("--json", action="store_true")
    common(ss)

    sh = sub.add_parser("show", help="a session's settings and leaderboard")
    sh.add_argument("name")
    sh.add_argument("--json", action="store_true", help="the session, its trials and their epoch rows")
    sh.add_argument("--log", type=int, metavar="N", help="print what trial N's code printed (its worker's log; a fused array's "
                         "members share their first trial's log, which the others name)")
    common(sh)

    ex = sub.add_parser("export", help="write the best config of a session to JSON")
    ex.add_argument("name")
    ex.add_argument("-o", "--output", help="the JSON file (default: NAME-best.json, with --trial NAME-trial-N.json)")
    ex.add_argument("--trial", type=int, metavar="N",
                    help="export trial N instead of the best (a complete trial that keeps the constraints)")
    common(ex)

    op = sub.add_parser("open", help="the dashboard of a session; follows it live when another process runs it")
    op.add_argument("name")
    common(op)

    pr = sub.add_parser("presets", help="list the bundled presets")
    common(pr)
    return p


def _where(sp: argparse.ArgumentParser) -> None:
    g = sp.add_argument_group("where trials run")
    g.add_argument("--devices", metavar="LIST",
                   help="cpu, cuda:0,cuda:1 or all (every visible GPU); default: the best device, or the session's")
    g.add_argument("--workers", metavar="N|auto",
                   help="worker processes per device (default 1; 0 trains in this process); auto: one per device, "
                        "more while its measured memory and utilisation allow, one fewer after out of memory")
    g.add_argument("--in-process", action="store_true", help="train in this process (for pdb); same as --workers 0")
    g.add_argument("--fuse", metavar="N|auto|off",
                   help="train up to N trials of one architecture as one fused array per worker (built-in trainer); "
                        "auto: sized from a step measured on each worker's device (default auto, or the session's)")
    g.add_argument("--backend", choices=["local", "ray"],
                   help="local: worker processes here (default); ray: one Ray actor per worker, on a Ray cluster")
    g.add_argument("--ray-address", metavar="HOST:PORT|auto",
                   help="ray: join this running cluster (default: start a local Ray on 127.0.0.1 for the run)")
    g.add_argument("--gpus-per-trial", type=float, metavar="N",
                   help="ray: GPUs of each actor; 0.25 lets four trials share one (default 1 on GPU nodes, else 0)")
    g.add_argument("--detach", action="store_true",
                   help="run headless in the background, detached from this terminal; follow it with tuitune open NAME")


def _budget(sp: argparse.ArgumentParser, resume: bool = False) -> None:
    g = sp.add_argument_group("the session's budget" + (" (each one given replaces the stored one)" if resume else ""))
    g.add_argument("--time", metavar="DURATION",
                   help="how long the session may run, like 8h, 30m or 1h30m: no trial starts after it (resume counts on)")
    g.add_argument("--total-epochs", type=_positive_int, metavar="N",
                   help="the session's total epochs (hyperband and asha fill it with brackets and rungs)")
    g.add_argument("--target", type=float, metavar="VALUE", help="stop once a trial's metric reaches VALUE")


def _budget_of(args: argparse.Namespace) -> dict[str, Any]:
    return {"time": args.time, "total_epochs": args.total_epochs, "target": args.target}


def _run_limits(sp: argparse.ArgumentParser) -> None:
    from tuitune.launch import DEFAULT_MAX_FAILURES

    sp.add_argument("--max-failures", type=_positive_int,
                    help=f"stop after this many failures in a row (default {DEFAULT_MAX_FAILURES}, or the session's)")
    sp.add_argument("--trial-timeout", type=_seconds, help="seconds a trial may run (default: no limit, or the session's)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command's own parser: its options are the ones to suggest
        commands = parser._subparsers._group_actions[0].choices if parser._subparsers else {}  # type: ignore[union-attr]
        commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    debug = getattr(args, "debug", False)
    import warnings

    from tuitune.core.errors import TuituneError

    def show(message, category, filename, lineno, file=None, line=None):  # one line, no source excerpt
        print(f"tuitune: warning: {message}", file=sys.stderr)

    warnings.showwarning = show

    try:
        return _dispatch(args)
    except TuituneError as e:
        if debug:
            raise
        print(f"tuitune: error: {getattr(e, 'cli_message', None) or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tuitune: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader closed the pipe (`| head -1`): what it wanted was printed
        _quiet_stdout()
        return EXIT_OK
    except SystemExit as e:  # rich's answer to a closed pipe is exit 1: the same as above
        if e.code == 1 and _stdout_closed_by_rich():
            return EXIT_OK
        raise


def _quiet_stdout() -> None:
    """Points standard output at /dev/null, so the interpreter's last flush cannot fail on a closed pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _stdout_closed_by_rich() -> bool:
    """True when rich met a closed pipe: it points standard output at /dev/null, then raises SystemExit(1)."""
    import os

    try:
        out, null = os.fstat(sys.stdout.fileno()), os.stat(os.devnull)
    except (OSError, ValueError):
        return False
    return (out.st_dev, out.st_ino) == (null.st_dev, null.st_ino)


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            print("tuitune: the TUI needs a terminal; for scripts use a subcommand (tuitune --help)", file=sys.stderr)
            return EXIT_USAGE
        return _tui(args, None)
    if cmd == "presets":
        return cmd_presets()
    if cmd == "sessions":
        return cmd_sessions(args)
    if cmd == "show":
        return cmd_show(args)
    if cmd == "export":
        return cmd_export(args)
    if cmd in ("run", "resume"):
        return cmd_run(args)
    if cmd == "open":
        store = _store(args)
        store.session(args.name)  # an unknown name is one line, before the screen opens
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            print(f"tuitune: open needs a terminal; without one use: tuitune{_db_flag(store.path)} show {args.name}",
                  file=sys.stderr)
            return EXIT_USAGE
        from tuitune.ui.app import run_app

        return run_app(db=store.path, open_session=args.name)
    raise AssertionError(cmd)


def _store(args: argparse.Namespace, create: bool = False):
    from tuitune.core.store.store import Store, default_db_path

    return Store(args.db or default_db_path(), create=create)


def _tui_available() -> bool:
    return importlib.util.find_spec("tuitune.ui.app") is not None


def _tui(args: argparse.Namespace, launch: Any) -> int:
    if not _tui_available():
        print("tuitune: the TUI is not built yet; use a subcommand (tuitune --help)", file=sys.stderr)
        return EXIT_USAGE
    from tuitune.ui.app import run_app

    return run_app(db=args.db, launch=launch)


def cmd_presets() -> int:
    from rich.console import Console
    from rich.table import Table

    from tuitune.training.presets import list_presets

    t = Table(box=None, pad_edge=False)
    t.add_column("preset", no_wrap=True, style="bold")
    t.add_column("metric", no_wrap=True)
    t.add_column("epochs", justify="right")
    t.add_column("description", ratio=1)
    for p in list_presets():
        searched = p.space.searched
        t.add_row(
            p.name, f"{p.metric} ({p.direction[:3]})", str(p.max_epochs),
            f"{p.description}\n[dim]searches {len(searched)}: {', '.join(searched)}[/]",
        )
    Console().print(t)
    print("run one with: tuitune run PRESET   (or a TOML file of your own: see the README)")
    return EXIT_OK


def cmd_sessions(args: argparse.Namespace) -> int:
    from tuitune.core.store.export import finite

    store = _store(args)
    recs = store.sessions()
    if args.json:
        print(json.dumps(finite([_session_json(r) for r in recs]), indent=2, allow_nan=False))
        return EXIT_OK
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from tuitune.core.text import fmt, printable

    if not recs:
        print(f"no sessions in {store.path}; start one with: tuitune run digits-mlp")
        return EXIT_OK
    t = Table(**_header_first())
    # The name is what resume, open and export need: never cut, whatever the width (piped output too).
    t.add_column("session", no_wrap=True, min_width=max(len(r.name) for r in recs))
    for c in ("preset", "strategy", "backend", "done", "best", "state", "updated"):
        t.add_column(c, overflow="fold")
    for r in recs:
        budget = "" if r.n_trials is None else f"/{r.n_trials}"
        state = f"{r.state} (live)" if r.alive else r.state
        t.add_row(  # names read back from the database: no escape sequences, no markup
            escape(printable(r.name)), escape(printable((r.preset or {}).get("name") or "-")), r.strategy, _backend(r), f"{r.n_done}{budget}", fmt(r.best_value),
            state,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r.updated or 0)),
        )
    # Piped, nothing is cut for a width that is no terminal's: the table takes the width it needs.
    Console(width=None if sys.stdout.isatty() else 200).print(t)
    return EXIT_OK


def _backend(r: Any) -> str:
    """Where a session's trials run: 'local', 'ray' or 'ray HOST:PORT'."""
    from tuitune.core.run.placement import Placement

    p = Placement.from_info(r.info)
    return f"{p.backend} {p.ray_address}" if p.backend == "ray" and p.ray_address else p.backend


def _session_json(r: Any) -> dict[str, Any]:
    from tuitune.core.run.placement import Placement

    p = Placement.from_info(r.info)
    return {
        "name": r.name, "preset": (r.preset or {}).get("name"), "strategy": r.strategy, "options": r.options,
        "metric": r.metric, "direction": r.direction, "seed": r.seed, "max_epochs": r.max_epochs,
        "trials": r.n_trials, "done": r.n_done, "best": r.best_value, "state": r.state, "alive": r.alive, "owner": r.owner if r.alive else None,
        "message": r.message, "note": r.note, "devices": list(p.devices) if p.devices else None, "workers": p.workers,
        "backend": p.backend, "ray_address": p.ray_address, "fuse": p.fuse,
        "space": r.space, "created": r.created, "updated": r.updated,
        "budget": r.info.get("budget") or {}, "run_seconds": r.info.get("run_seconds"),
    }


def cmd_show(args: argparse.Namespace) -> int:
    from tuitune.core.store.export import finite

    store = _store(args)
    rec = store.session(args.name)
    if args.log is not None:
        return _print_log(store, rec.name, args.log)
    trials = store.trials(args.name)
    if args.json:
        doc = {
            "session": _session_json(rec),
            "trials": [
                {
                    "number": t.number, "state": t.state.value, "config": t.config, "value": t.value,
                    "budget": t.budget, "error": t.reason if t.state.value == "failed" else None,
                    "reason": t.reason, "meta": t.meta, "epochs": [dict(e) for e in t.epochs], "info": t.info,
                    "note": t.note,
                }
                for t in trials
            ],
        }
        print(json.dumps(finite(doc), indent=2, default=str, allow_nan=False))
        return EXIT_OK
    from rich.console import Console
    from rich.markup import escape

    from tuitune.core.text import fmt, printable
    from tuitune.headless import leaderboard_table

    c = Console()
    preset = printable((rec.preset or {}).get("name") or "-")
    opts = printable(", ".join(f"{k}={v}" for k, v in rec.options.items()) or "none")
    c.print(f"[bold]{escape(printable(rec.name))}[/]  preset {escape(preset)}, strategy {rec.strategy} ({opts}), seed {rec.seed}")
    c.print(
        f"{rec.metric} ({rec.direction}), up to {_epochs(rec.max_epochs)}, trials {rec.n_done}"
        f"{'' if rec.n_trials is None else '/' + str(rec.n_trials)}, state {rec.state}"
        + (f": {escape(printable(rec.message))}" if rec.message else "")
        + f", best {fmt(rec.best_value)}"
    )
    from tuitune.core.budget import Budget, epochs_trained, run_seconds

    budget = Budget.of(rec)
    if budget:
        best = rec.best_value
        left = budget.left(epochs=epochs_trained(trials), best=best, direction=rec.direction, run_seconds=run_seconds(rec))
        c.print(f"budget: {' │ '.join(left)}")
    if rec.note:
        c.print(f"note: {escape(printable(rec.note))}")
    c.print(leaderboard_table(rec, trials, limit=None))
    for t in trials:
        if t.note:
            c.print(f"note on trial {t.number}: {escape(printable(t.note))}")
    return EXIT_OK


def _print_log(store: Any, name: str, number: int) -> int:
    import os

    from tuitune.core.errors import StoreError
    from tuitune.core.store.safefs import open_private
    from tuitune.core.store.store import SessionFiles

    store.trial(name, number)  # an unknown trial is one line naming it
    path = SessionFiles(store.path, name).log(number)
    if not path.exists():
        raise StoreError(
            f"trial {number} of '{name}' has no log ({path} does not exist): it ran in the coordinator's own process "
            "(--in-process), or before tuitune kept logs"
        )
    with os.fdopen(open_private(path, os.O_RDONLY), "rb") as f:  # never through a symlink
        sys.stdout.buffer.write(f.read())
    sys.stdout.flush()
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from tuitune.core.api import Session

    store = _store(args)
    store.session(args.name)
    from tuitune.core.store.export import is_stream

    default = f"{args.name}-best.json" if args.trial is None else f"{args.name}-trial-{args.trial}.json"
    output = args.output or default
    streamed = is_stream(output)  # before writing: a new file is not one
    path = Session(store, args.name).export(output, trial=args.trial)
    if not streamed:
        print(path)
    return EXIT_OK


def _strategy_options(args: argparse.Namespace) -> dict[str, Any]:
    """The strategy options given as flags (core's STRATEGY_OPTIONS), each checked to belong to --strategy."""
    from tuitune.core.errors import StrategyError
    from tuitune.core.search.strategies import STRATEGY_OPTIONS

    given = {}
    for opt in STRATEGY_OPTIONS:
        value = getattr(args, opt.flag[2:].replace("-", "_"), None)
        if value is None:
            continue
        if args.strategy not in opt.strategies:
            of = " and ".join(opt.strategies)
            raise StrategyError(f"{opt.flag} is an option of the {of} strateg{'ies' if len(opt.strategies) > 1 else 'y'}, "
                                f"not of {args.strategy}")
        given[opt.name] = value
    return given


def cmd_run(args: argparse.Namespace) -> int:
    from tuitune.launch import new_run, resume_run

    placement = _placement(args)
    if args.command == "run":
        from tuitune.core.search.strategies import check_strategy_name

        check_strategy_name(args.strategy)  # before its options are checked against it
        launch = new_run(
            args.preset, strategy=args.strategy, trials=args.trials, max_epochs=args.max_epochs, seed=args.seed,
            session=args.session, db=args.db, data_dir=args.data_dir, sets=args.set, base=args.base,
            options=_strategy_options(args), placement=placement,
            budget=_budget_of(args), prior=args.prior, warm_start=args.warm_start,
        )
    else:
        launch = resume_run(
            args.name, db=args.db, trials=args.trials, more_trials=args.more, data_dir=args.data_dir, sets=args.set,
            base=args.base, placement=placement, budget=_budget_of(args),
        )
    if args.detach:
        return detach(args, launch)
    if not args.headless:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            print("tuitune: not a terminal (output redirected?): running headless", file=sys.stderr)
        elif _tui_available():
            return _tui(args, launch)
    return run_headless(launch)


def _placement(args: argparse.Namespace) -> dict[str, Any]:
    """The flags of "where trials run" that were given, as ``Placement.parse`` takes them (launch parses them
    over the preset's or the stored session's placement)."""
    asked = {
        "devices": args.devices if args.devices is not None else args.device,
        "workers": 0 if args.in_process else args.workers, "backend": args.backend, "ray_address": args.ray_address,
        "gpus_per_trial": args.gpus_per_trial, "max_failures": args.max_failures, "trial_timeout": args.trial_timeout,
        "fuse": args.fuse,
    }
    if args.devices is None and args.device is not None:
        asked["devices_flag"] = "--device"  # a missing device's hint names the flag the user gave
    return {k: v for k, v in asked.items() if v is not None}


def resume_hint(launch: Any) -> str:
    """The command that resumes a launch's session, ``--db`` included when it is not the default."""
    from tuitune.core.text import resume_command

    return resume_command(launch.name, launch.store.path)


def detach(args: argparse.Namespace, launch: Any) -> int:
    """Starts the launched session headless in a new process session, detached from this terminal."""
    import os
    import subprocess

    from tuitune.core.store.safefs import open_append
    from tuitune.core.store.store import SessionFiles

    files = SessionFiles(launch.store.path, launch.name)
    files.make("logs")  # created, or checked to be the user's own
    log = files.session_log
    # Not "python -m", which puts the current folder first on sys.path (a sqlite3.py there would run):
    # -P (Python 3.11+) leaves it out and keeps PYTHONPATH; older Pythons run isolated (-I).
    safe = ["-P"] if sys.version_info >= (3, 11) else ["-I"]
    argv = [sys.executable, *safe, "-m", "tuitune", "--db", str(launch.store.path), "resume", launch.name, "--headless",
            *launch.placement.argv()]
    if args.command == "resume" and launch.updates.get("n_trials") is not None:  # the budget it resolved
        argv += ["--trials", str(launch.updates["n_trials"])]
    if args.command == "resume":  # a run's budget is stored with its new session already
        for flag, value in (("--time", args.time), ("--total-epochs", args.total_epochs), ("--target", args.target)):
            if value is not None:
                argv += [flag, str(value)]
    if args.set and launch.strategy.name == "manual":  # the manual run's change
        for item in args.set:
            argv += ["--set", item]
        if args.base is not None:
            argv += ["--base", str(args.base)]
    with open_append(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=os.getcwd(), close_fds=True,
        )
    db = _db_flag(launch.store.path)
    print(f"session '{launch.name}' runs in the background (pid {proc.pid}); its output: {log}")
    print(f"follow it with: tuitune{db} open {launch.name}")
    return EXIT_OK


def _db_flag(path: Any) -> str:
    """`` --db PATH`` when ``path`` is not the default database, for hints that must work when pasted."""
    import shlex

    from tuitune.core.text import db_option

    return "".join(" " + shlex.quote(w) for w in db_option(path))


def run_headless(launch: Any) -> int:
    """Runs a launch on the main thread with progress bars; signals stop it cleanly after the epoch."""
    from tuitune.core.api import Session
    from tuitune.headless import HeadlessDisplay, leaderboard_table

    runner: Any = None

    def on_closed() -> None:
        # A closed standard output (``| head``) stops the run as Ctrl+C does: cleanly, resumably.
        if runner is not None:
            runner.stop("stopped: the output was closed")
        try:
            print(f"tuitune: the output was closed: stopping after this epoch; everything is saved. "
                  f"Resume with: {resume_hint(launch)}", file=sys.stderr)
        except OSError:
            pass

    display = HeadlessDisplay(launch.record, on_closed=on_closed)
    for note in [*launch.notes, f"trials run {launch.where}"]:
        display.print(note)
    runner = launch.runner([display])
    if display.closed:
        runner.stop("stopped: the output was closed")
    signals_seen: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        signals_seen.append(signum)
        if len(signals_seen) > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        runner.stop(f"{name} received")
        try:
            print(f"\n{name}: stopping after this epoch; everything is saved. "
                  f"Resume with: {resume_hint(launch)}"
                  + ("  (Ctrl+C again to quit at once)" if signum == signal.SIGINT else ""), file=sys.stderr)
        except OSError:
            pass

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        result = launch.run(runner)
    finally:
        display.stop()
        for s, h in old.items():
            signal.signal(s, h)
    session = Session(launch.store, launch.name)
    display.print(leaderboard_table(session.record, session.trials))
    if result.state == "failed":
        print(f"tuitune: session '{launch.name}' stopped: {result.message}", file=sys.stderr)
        return EXIT_FAILED
    if result.state == "stopped":
        display.print(f"stopped; resume with: {resume_hint(launch)}")
        return EXIT_INTERRUPTED if signals_seen else EXIT_OK
    if result.message:  # the budget ended it: the time, the epochs or the target
        display.print(f"finished: {result.message}")
    best = session.best
    if best is not None and session.objectives.multi:
        front = session.pareto
        display.print(
            f"Pareto set: trials {', '.join(str(t.number) for t in front)} (add --trial N for one of them); "
            f"export with: tuitune export {launch.name}{_db_flag(launch.store.path)}"
        )
    elif best is not None:
        display.print(
            f"best: trial {best.number}, {session.record.metric}={best.value:.4g}; "
            f"export with: tuitune export {launch.name}{_db_flag(launch.store.path)}"
        )
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
