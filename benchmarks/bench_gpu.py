"""GPU checks that only a GPU can make, each printing one markdown section (``benchmarks/gpu_suite.sh`` runs them all).

    python benchmarks/bench_gpu.py memory  [--device cuda]   # memory back to its baseline after 50 trials
    python benchmarks/bench_gpu.py oom     [--device cuda]   # a real out-of-memory error is contained
    python benchmarks/bench_gpu.py workers [--device cuda]   # 4 workers on one GPU against 1 (trial-epochs/s)
    python benchmarks/bench_gpu.py fused   [--device cuda]   # 16 MLP trials fused with torch.func vs one by one

Each runs on the CPU too (``--device cpu``, smaller sizes with ``--quick``) so the script itself is tested
where no GPU is lent. The data is MNIST-sized and generated (random 28x28 uint8 images in torchvision's raw
format, as bench_trainer.py writes them), so nothing is downloaded; the model and trainer are tuitune's own.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402

import tuitune as tt  # noqa: E402


def _data_dir(n: int) -> Path:
    from bench_trainer import write_mnist_like

    root = Path(tempfile.mkdtemp(prefix="tuitune-gpu-"))
    write_mnist_like(root, n)
    return root


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _launch(data: Path, *, trials: int, epochs: int, workers: int, device: str, db: Path, session: str) -> Any:
    from tuitune.launch import new_run

    return new_run(
        "mnist-mlp", strategy="random", trials=trials, max_epochs=epochs, seed=0, session=session, db=db,
        data_dir=str(data), placement={"devices": device, "workers": workers},
    )


def memory(args: argparse.Namespace) -> None:
    """50 trials in this process (workers=0, so this process's allocator is the one measured)."""
    data = _data_dir(6000 if args.quick else 60000)
    db = Path(tempfile.mkdtemp()) / "m.db"
    trials = 10 if args.quick else 50
    launch = _launch(data, trials=trials, epochs=1, workers=0, device=args.device, db=db, session="mem")
    seen: list[tuple[int, int]] = []

    def listen(event: Any) -> None:
        if type(event).__name__ == "TrialFinished" and args.device.startswith("cuda"):
            seen.append((torch.cuda.memory_allocated(), torch.cuda.memory_reserved()))

    if args.device.startswith("cuda"):
        torch.cuda.init()
    base = torch.cuda.memory_allocated() if args.device.startswith("cuda") else 0
    t0 = time.perf_counter()
    launch.runner([listen]).run()
    wall = time.perf_counter() - t0
    states = [t.state.value for t in launch.store.trials("mem")]
    print(f"## Memory after {trials} trials ({args.device})\n")
    print(f"- trials: {states.count('complete')} complete of {trials}, {wall:.1f} s")
    if seen:
        print(f"- allocated before the first trial: {base / 2**20:.1f} MiB; after trial 1: {seen[0][0] / 2**20:.1f} MiB; "
              f"after the last: {seen[-1][0] / 2**20:.1f} MiB (reserved {seen[-1][1] / 2**20:.1f} MiB)")
        grew = seen[-1][0] - seen[0][0]
        print(f"- growth from trial 1 to trial {trials}: {grew / 2**20:.2f} MiB -> "
              f"{'PASS' if grew <= 1 * 2**20 else 'FAIL'} (goal: back to the baseline, within 1 MiB)")
    print()


OOM_MODULE = '''
import torch

def objective(config, trial):
    for e in trial.epochs():
        if trial.number == 1:
            free, total = torch.cuda.mem_get_info()
            x = torch.empty(int(total * 2), dtype=torch.uint8, device="cuda")  # twice the card: a real OOM
        trial.report(val_loss=float(config["x"]) + 1.0 / e)
'''


def oom(args: argparse.Namespace) -> None:
    print(f"## A real out-of-memory error ({args.device})\n")
    if not args.device.startswith("cuda"):
        print("- skipped: needs a CUDA device\n")
        return
    folder = Path(tempfile.mkdtemp())
    (folder / "tt_oom_objective.py").write_text(OOM_MODULE)
    sys.path.insert(0, str(folder))
    import tt_oom_objective

    for workers in (0, 1):
        s = tt.tune(tt_oom_objective.objective, tt.Space(x=tt.Float(0, 1)), trials=3, max_epochs=2,
                    db=folder / f"o{workers}.db", session="oom", workers=workers, devices="cuda:0")
        rows = [(t.number, t.state.value, t.reason) for t in s.trials]
        ok = rows[1][1] == "failed" and "out of memory" in (rows[1][2] or "") and rows[0][1] == rows[2][1] == "complete"
        where = "in this process" if workers == 0 else "in a worker process"
        print(f"- {where}: {rows} -> {'PASS' if ok else 'FAIL'}")
    print(f"- allocated in this process afterwards: {torch.cuda.memory_allocated() / 2**20:.1f} MiB\n")


def workers(args: argparse.Namespace) -> None:
    data = _data_dir(6000 if args.quick else 60000)
    trials, epochs = (4, 1) if args.quick else (8, 3)
    print(f"## Workers on one device ({args.device}): {trials} mnist-mlp trials x {epochs} epochs\n")
    print("| workers | wall s | trial-epochs/s | mean epoch s |")
    print("|---|---|---|---|")
    rates = {}
    for n in (1, 4):
        db = Path(tempfile.mkdtemp()) / "w.db"
        launch = _launch(data, trials=trials, epochs=epochs, workers=n, device=args.device, db=db, session="w")
        t0 = time.perf_counter()
        launch.runner().run()
        wall = time.perf_counter() - t0
        ts = launch.store.trials("w")
        done = sum(len(t.epochs) for t in ts)
        secs = [e.get("epoch_seconds", 0.0) for t in ts for e in t.epochs]
        rates[n] = done / wall
        print(f"| {n} | {wall:.1f} | {rates[n]:.2f} | {sum(secs) / max(1, len(secs)):.3f} |")
    print(f"\n4 workers / 1 worker: {rates[4] / rates[1]:.2f}x trial-epochs per second (worker start-up included)\n")


def fused(args: argparse.Namespace) -> None:
    """16 MLPs (784-256-10) trained on the same batches: one vmapped functional step against 16 loops."""
    from torch import nn
    from torch.func import functional_call, grad, stack_module_state, vmap

    dev = torch.device(args.device)
    k, n, bs = 16, (6000 if args.quick else 60000), 128
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 784, generator=g).to(dev)
    y = torch.randint(0, 10, (n,), generator=g).to(dev)
    lr = torch.logspace(-3, -1, k, device=dev)
    mom = torch.linspace(0.5, 0.95, k, device=dev)
    wd = torch.logspace(-6, -3, k, device=dev)

    def make() -> nn.Module:
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).to(dev)

    models = [make() for _ in range(k)]
    params, buffers = stack_module_state(models)
    base = make().to("meta")

    def loss_fn(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    step_grad = vmap(grad(loss_fn), in_dims=(0, 0, None, None))
    vel = {name: torch.zeros_like(v) for name, v in params.items()}

    def shape(v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return v.view(-1, *([1] * (t.dim() - 1)))

    def fused_epoch() -> None:
        for i in range(0, n, bs):
            xb, yb = x[i : i + bs], y[i : i + bs]
            grads = step_grad(params, buffers, xb, yb)
            with torch.no_grad():
                for name, p in params.items():
                    d = grads[name] + shape(wd, p) * p
                    vel[name].mul_(shape(mom, p)).add_(d)
                    p.sub_(shape(lr, p) * vel[name])

    opts = [torch.optim.SGD(m.parameters(), lr=float(lr[j]), momentum=float(mom[j]), weight_decay=float(wd[j]))
            for j, m in enumerate(models)]

    def loop_epoch() -> None:
        for m, o in zip(models, opts):
            for i in range(0, n, bs):
                o.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(m(x[i : i + bs]), y[i : i + bs]).backward()
                o.step()

    times = {}
    for name, fn in (("one by one", loop_epoch), ("fused (vmap)", fused_epoch)):
        fn()  # warm-up (kernels, allocator)
        _sync(args.device)
        t0 = time.perf_counter()
        fn()
        _sync(args.device)
        times[name] = time.perf_counter() - t0
    print(f"## {k} MLP trials, one epoch of {n} images, batch {bs} ({args.device})\n")
    print("| path | s per epoch of all 16 trials |")
    print("|---|---|")
    for name, s in times.items():
        print(f"| {name} | {s:.3f} |")
    ratio = times["one by one"] / times["fused (vmap)"]
    print(f"\nfused / one by one: {ratio:.2f}x faster (decides whether fused trials become a feature: worth it above ~2x)\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("check", choices=["memory", "oom", "workers", "fused"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test of the script)")
    args = ap.parse_args(argv)
    if args.device == "cuda":
        args.device = "cuda:0"
    os.environ.setdefault("TUITUNE_DB", str(Path(tempfile.mkdtemp()) / "unused.db"))
    {"memory": memory, "oom": oom, "workers": workers, "fused": fused}[args.check](args)


if __name__ == "__main__":
    main()
