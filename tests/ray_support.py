"""Ray for the tests: everything on 127.0.0.1, one small local cluster per test module.

Ray normally advertises the machine's outward address even for a local cluster; with clusters
"disabled" (an option meant for macOS and Windows) it uses the loopback address, so no test traffic
leaves 127.0.0.1. The variable must be set before Ray is first imported, and subprocess drivers
inherit it.
"""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import pytest  # noqa: E402

ray = pytest.importorskip("ray")


def start_local_cluster(cpus: int = 2) -> str:
    """Start (or join this process's) Ray instance; returns its GCS address for subprocess drivers."""
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    return ray.get_runtime_context().gcs_address
