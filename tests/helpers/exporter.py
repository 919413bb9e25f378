"""A real Prometheus exporter in a subprocess, serving gauges whose values the test controls.

Run as a script (``python exporter.py VALUES_JSON``) it serves prometheus_client's HTTP endpoint on a
free loopback port, prints ``PORT <n>`` once listening, and re-reads the JSON file on every scrape. The
file maps metric names to lists of ``{"labels": {...}, "value": <number or "NaN"/"+Inf"/"-Inf">}``.

:class:`Exporter` is the test side: it writes the file, starts the script and rewrites the file to
change what the next scrape sees.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

Series = Mapping[str, Any]  # {"labels": {...}, "value": ...}
Values = Mapping[str, Sequence[Series]]


def gauge(value: float | str, **labels: str) -> dict[str, Any]:
    """One series for :class:`Exporter` values: ``gauge(3, cluster="a")``."""
    return {"labels": labels, "value": value}


class Exporter:
    """The exporter subprocess; ``target`` is what a Prometheus scrape config lists."""

    def __init__(self, workdir: Path, values: Values) -> None:
        self.values_file = workdir / "exporter-values.json"
        self.log_file = workdir / "exporter.log"
        self._values: dict[str, list[dict[str, Any]]] = {}
        self._process: subprocess.Popen[str] | None = None
        self.port = 0
        self.set(values)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "exporter not started"
        return self._process.pid

    def set(self, values: Values) -> None:
        """Replace the series of the metrics named in ``values``; other metrics keep theirs."""
        for name, series in values.items():
            self._values[name] = [dict(s) for s in series]
        tmp = self.values_file.with_name(self.values_file.name + ".tmp")
        tmp.write_text(json.dumps(self._values))
        # A scrape must never read a half-written file.
        os.replace(tmp, self.values_file)

    def start(self, timeout: float = 20.0) -> None:
        # stderr goes to a file: a pipe nobody reads would block the child once full.
        with self.log_file.open("w") as log:
            self._process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), str(self.values_file)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"exporter did not start: {line!r}; log: {self.log_file.read_text()[-2000:]}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Exporter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(values_file: Path) -> None:
    from prometheus_client import start_http_server
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector, CollectorRegistry

    class FileCollector(Collector):
        def collect(self) -> Iterator[GaugeMetricFamily]:
            values: dict[str, list[dict[str, Any]]] = json.loads(values_file.read_text())
            for name, series in values.items():
                label_names = sorted({key for s in series for key in s["labels"]})
                family = GaugeMetricFamily(name, f"test gauge {name}", labels=label_names)
                for s in series:
                    family.add_metric([s["labels"].get(k, "") for k in label_names], float(s["value"]))
                yield family

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FileCollector())
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    print(f"PORT {server.server_port}", flush=True)
    thread.join()


if __name__ == "__main__":
    _serve(Path(sys.argv[1]))
