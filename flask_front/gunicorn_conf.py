"""gunicorn for the Flask front: threaded workers, each a Ray driver connected after fork.

``gunicorn -c flask_front/gunicorn_conf.py flask_front.wsgi:app`` (``recall up`` and the systemd unit do).
The app is built in each worker (no preload), and the worker joins Ray in ``post_worker_init``: a Ray
driver must never be created before gunicorn forks.
"""

from __future__ import annotations

import os
import tempfile

bind = os.environ.get("RECALL_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))  # requests mostly wait on Ray: threads are cheap
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))  # above SERVE_TIMEOUT_S, so Ray's 503 wins
graceful_timeout = 30
keepalive = 5
preload_app = False
accesslog = None  # the app writes JSON access lines itself
errorlog = "-"


def on_starting(server) -> None:  # noqa: ANN001
    # Prometheus' multiprocess mode: every worker writes its samples here; /metrics merges them.
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="recall-metrics-")


def post_worker_init(worker) -> None:  # noqa: ANN001
    front = getattr(worker.wsgi, "extensions", {}).get("recall")
    if front is not None:
        try:
            front.serve.connect()
        except Exception as exc:  # Serve may still be starting: the first request connects, /readyz says so
            worker.log.warning("could not connect to Ray Serve yet: %s", type(exc).__name__)


def child_exit(server, worker) -> None:  # noqa: ANN001
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
