"""The Ray backend's channel, measured: a report's round trip through actor methods (RayPool's take/give)
against a pair of ``ray.util.queue.Queue`` actors, side by side, and their ratio.

Run: ``nice -n 10 python benchmarks/bench_ray_channel.py`` (a local Ray on 127.0.0.1 with 2 CPUs; Ray
writes its files under HOME and /tmp as any local Ray does). Needs ``pip install "tuitune[ray]"``.
"""

from __future__ import annotations

import queue
import threading
import time

import ray
from ray.util.queue import Queue

N = 300


@ray.remote(num_cpus=1, max_concurrency=4)
class Channel:
    """RayPool's pattern: in-actor queues, one pending take() per actor, give() answers."""

    def __init__(self) -> None:
        self.out: queue.Queue[tuple[str, ...]] = queue.Queue()
        self.inn: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self) -> None:
        while True:
            self.out.put(("report",))
            self.inn.get()

    def take(self) -> tuple[str, ...]:
        return self.out.get()

    def give(self, msg: str) -> None:
        self.inn.put(msg)


@ray.remote(num_cpus=1)
class QueueWorker:
    def run(self, out: Queue, inn: Queue, n: int) -> None:
        for _ in range(n):
            out.put(("report",))
            inn.get()


def main() -> None:
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ch = Channel.remote()
        ray.get(ch.take.remote())  # started
        ch.give.remote("ok")
        t = time.perf_counter()
        for _ in range(N):
            ray.get(ch.take.remote())
            ch.give.remote("ok")
        methods = (time.perf_counter() - t) / N
        out, inn = Queue(), Queue()
        w = QueueWorker.remote()
        w.run.remote(out, inn, N + 1)
        out.get()
        inn.put("ok")
        t = time.perf_counter()
        for _ in range(N):
            out.get()
            inn.put("ok")
        queues = (time.perf_counter() - t) / N
    finally:
        ray.shutdown()
    print(f"round trip per report ({N}): actor methods {methods * 1e3:.2f} ms, a pair of ray.util.queue.Queue "
          f"{queues * 1e3:.2f} ms, ratio {queues / methods:.2f} (Ray {ray.__version__})")


if __name__ == "__main__":
    main()
