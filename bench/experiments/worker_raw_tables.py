"""EXPERIMENT (bench only): a worker whose tables are declared bytes → bytes (`app_raw_tables`).

    .venv/bin/python -m bench.run --only recovery --worker-module bench.experiments.worker_raw_tables
"""

from __future__ import annotations

import sys

import bench.experiments.app_raw_tables as fixed_app

sys.modules["streams.app"] = fixed_app  # before anything imports the original

if __name__ == "__main__":
    from streams.cli.run import worker

    worker.main(args=[], standalone_mode=True)
