"""The front's connection to Ray Serve: a normal Ray driver per gunicorn worker, made after fork.

Never ``ray://`` (Ray Client) and never before gunicorn forks: a Ray driver does not survive ``fork``. The
handle is fetched once per process; every call has a timeout, and Ray or a model being unavailable becomes a
503 with ``Retry-After`` instead of a hung request.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from recall_ray.config import Settings
from recall_ray.errors import RecallError, Unavailable, unwrap

log = logging.getLogger("recall.front.serve")


class ServeClient:
    def __init__(self, settings: Settings, observe=None):  # noqa: ANN001
        self.settings = settings
        self._handle = None
        self._lock = threading.Lock()
        self._observe = observe  # (method, outcome, seconds) -> None, for metrics

    def connect(self) -> None:
        """Join the Ray cluster as a driver (RAY_ADDRESS, or the local cluster) and get the app's handle."""
        import ray
        from ray import serve

        with self._lock:
            if self._handle is not None:
                return
            if not ray.is_initialized():
                address = self.settings.ray_address or "auto"
                if address.startswith("ray://"):
                    raise Unavailable(
                        "RAY_ADDRESS must be a cluster address, not ray://", code="CONFIG_RAY_ADDRESS"
                    )
                ray.init(
                    address=address,
                    namespace="recall-front",
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
            self._handle = serve.get_app_handle(self.settings.serve_app_name)

    def handle(self):  # noqa: ANN201
        if self._handle is None:
            try:
                self.connect()
            except RecallError:
                raise
            except Exception as exc:
                raise Unavailable(
                    f"the AI service is not reachable ({type(exc).__name__})", code="AI_SERVE_UNAVAILABLE"
                ) from None
        return self._handle

    def call(self, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        """``handle.<method>.remote(*args)`` with a timeout; domain errors come back as themselves."""
        from ray.serve.exceptions import RayServeException

        timeout = timeout_s or self.settings.serve_timeout_s
        t0, outcome = time.perf_counter(), "ok"
        try:
            return getattr(self.handle(), method).remote(*args).result(timeout_s=timeout)
        except TimeoutError:
            outcome = "timeout"
            raise Unavailable(
                f"the AI service did not answer within {timeout:.0f}s", code="AI_UPSTREAM_TIMEOUT"
            ) from None
        except Exception as exc:
            cause = unwrap(exc)  # Ray's wrapper of a domain error shadows its code: take the original
            if isinstance(cause, RecallError):
                outcome = "error"
                raise cause from None
            outcome = "unavailable"
            if isinstance(exc, RayServeException | ConnectionError) or "Ray" in type(exc).__name__:
                log.warning("Serve call %s failed: %s", method, type(exc).__name__)
                raise Unavailable(
                    f"the AI service is unavailable ({type(exc).__name__})", code="AI_SERVE_UNAVAILABLE"
                ) from None
            raise
        finally:
            if self._observe is not None:
                self._observe(method, outcome, time.perf_counter() - t0)

    def api(
        self, operation: str, caller: dict[str, Any], payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return self.call("api", operation, caller, payload or {})

    def status(self) -> dict[str, Any]:
        """The Serve application's and its deployments' statuses, as the controller reports them."""
        from ray import serve

        self.handle()
        app = serve.status().applications.get(self.settings.serve_app_name)
        if app is None:
            return {"status": "NOT_DEPLOYED", "deployments": {}}
        return {
            "status": _name(app.status),
            "deployments": {name: _name(d.status) for name, d in app.deployments.items()},
        }


def _name(status: Any) -> str:
    return str(getattr(status, "value", status))
