"""Serve config files (``deploy/serve.*.yaml``): load, adjust and deploy them through Serve's controller.

This is what ``serve run config.yaml`` does, without needing the Ray dashboard. Deploying a config whose
import path, args and runtime_env are unchanged and whose ``user_config`` changed is a lightweight update:
Serve calls ``reconfigure`` on the live replicas instead of replacing them, so no request is dropped.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import yaml
from ray.serve.schema import ServeApplicationSchema, ServeDeploySchema

from recall_ray.errors import Conflict, Unavailable

APP_NAME = "recall"
DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"
PROFILE_CONFIGS = {"tiny": "serve.cpu.yaml", "cpu": "serve.cpu.yaml", "gpu": "serve.gpu-1x.yaml"}


def config_path(profile: str) -> Path:
    return DEPLOY_DIR / PROFILE_CONFIGS[profile]


def load_config(path: Path, **app_args: Any) -> ServeDeploySchema:
    """The config at ``path`` with ``app_args`` merged into the recall application's ``args``."""
    raw = yaml.safe_load(path.read_text())
    config = ServeDeploySchema.model_validate(raw)
    if app_args:
        app = app_config(config)
        app.args = {**(app.args or {}), **{k: v for k, v in app_args.items() if v is not None}}
    return config


def app_config(config: ServeDeploySchema, name: str = APP_NAME) -> ServeApplicationSchema:
    for app in config.applications:
        if app.name == name:
            return app
    raise KeyError(f"the serve config has no application {name!r}")


def deployment_user_config(app: ServeApplicationSchema, deployment: str) -> dict[str, Any]:
    for d in app.deployments:
        if d.name == deployment:
            return copy.deepcopy(d.user_config) if isinstance(d.user_config, dict) else {}
    return {}


def with_user_config(
    app: ServeApplicationSchema, deployment: str, user_config: dict[str, Any]
) -> ServeApplicationSchema:
    """A copy of ``app`` in which ``deployment`` has ``user_config`` (every other field unchanged)."""
    data = app.model_dump(exclude_unset=True)
    entries = data.setdefault("deployments", [])
    for entry in entries:
        if entry["name"] == deployment:
            entry["user_config"] = user_config
            break
    else:
        entries.append({"name": deployment, "user_config": user_config})
    return ServeApplicationSchema.model_validate(data)


def deploy(config: ServeDeploySchema, timeout_s: float = 600.0) -> None:
    """Start Serve if needed (HTTP options from the config), apply the config and wait until it runs."""
    from ray import serve

    serve.start(
        proxy_location=config.proxy_location,
        http_options=config.http_options.model_dump(exclude_unset=True),
    )
    _client().deploy_apps(config)
    wait_running([app.name for app in config.applications], timeout_s)


def deploy_app(app: ServeApplicationSchema, timeout_s: float = 600.0) -> None:
    """Redeploy one application of the running Serve instance, keeping the instance's other settings."""
    details = _client().get_serve_details()
    others = [
        ServeApplicationSchema.model_validate(a["deployed_app_config"])
        for name, a in details.get("applications", {}).items()
        if name != app.name and a.get("deployed_app_config")
    ]
    config = ServeDeploySchema(
        proxy_location=details.get("proxy_location") or "HeadOnly",
        http_options=details.get("http_options") or {},
        applications=[*others, app],
    )
    _client().deploy_apps(config)
    wait_running([app.name], timeout_s)


def running_app(name: str = APP_NAME) -> ServeApplicationSchema | None:
    """The config the running application was deployed with (None if it was not deployed from a config)."""
    details = _client().get_serve_details()
    app = details.get("applications", {}).get(name)
    if not app or not app.get("deployed_app_config"):
        return None
    return ServeApplicationSchema.model_validate(app["deployed_app_config"])


def update_user_config(deployment: str, changes: dict[str, Any], app_name: str = APP_NAME) -> None:
    """Merge ``changes`` into one deployment's user_config on the running app: a lightweight update."""
    app = running_app(app_name)
    if app is None:
        raise Unavailable(
            f"application {app_name!r} is not running from a serve config; start it with `recall up`",
            code="AI_SERVE_APP_MISSING",
        )
    merged = {**deployment_user_config(app, deployment), **changes}
    deploy_app(with_user_config(app, deployment, merged))


def wait_running(names: list[str], timeout_s: float) -> None:
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    deadline = time.monotonic() + timeout_s
    time.sleep(0.2)  # the controller flips the status to DEPLOYING when it takes the config
    while True:
        apps = serve.status().applications
        statuses = {n: apps[n].status if n in apps else None for n in names}
        failed = {n: apps[n].message for n, s in statuses.items() if s == ApplicationStatus.DEPLOY_FAILED}
        if failed:
            raise Unavailable(f"Serve could not deploy {failed}", code="AI_SERVE_DEPLOY_FAILED")
        if all(s == ApplicationStatus.RUNNING for s in statuses.values()):
            return
        if time.monotonic() > deadline:
            raise Unavailable(
                f"Serve applications not running after {timeout_s:.0f}s: {statuses}",
                code="AI_SERVE_DEPLOY_TIMEOUT",
            )
        time.sleep(0.5)


def _client():  # noqa: ANN202
    # The controller client is what `serve run config.yaml` and the dashboard use to apply configs.
    from ray.serve.context import _get_global_client

    return _get_global_client()


# --- image-model rollout: which CLIP version search and matching use ------------------------------------


def rollout(app_name: str = APP_NAME) -> tuple[dict[str, Any], list[str]]:
    """The running application's rollout (the ingress's user_config) and the CLIP versions it has loaded."""
    app = running_app(app_name)
    if app is None:
        raise Unavailable(
            f"application {app_name!r} is not running from a serve config; start it with `recall up`",
            code="AI_SERVE_APP_MISSING",
        )
    current = deployment_user_config(app, "Recall").get("rollout") or {}
    return current, list(deployment_user_config(app, "Clip").get("versions") or [])


def switch_serving(version: str, canary_percent: int = 0, app_name: str = APP_NAME) -> dict[str, Any]:
    """Serve ``version`` to everyone, or to ``canary_percent`` of users. Both are lightweight updates: the
    CLIP replicas load the version beside the ones they hold, then the ingress switches; no request fails."""
    from ray import serve

    current, loaded = rollout(app_name)
    if not loaded:  # deployed without an explicit list: the replicas hold the version the app was built with
        loaded = [serve.get_deployment_handle("Clip", app_name).info.remote().result()["version"]]
    if version not in loaded:
        update_user_config("Clip", {"versions": [*loaded, version]}, app_name)
    serving = current.get("serving") or loaded[0]
    if canary_percent:
        new = {"serving": serving, "canary": version, "canary_percent": canary_percent}
    else:
        new = {"serving": version, "previous": serving if serving != version else current.get("previous")}
    update_user_config("Recall", {"rollout": new}, app_name)
    return new


def rollback(app_name: str = APP_NAME) -> dict[str, Any]:
    """End a canary, or serve the version that served before the last switch."""
    current, _ = rollout(app_name)
    if current.get("canary"):
        new = {"serving": current.get("serving"), "previous": current.get("previous")}
    elif current.get("previous"):
        new = {"serving": current["previous"], "previous": current.get("serving")}
    else:
        raise Conflict("there is no earlier version to roll back to", code="AI_ROLLOUT_NOTHING_TO_UNDO")
    update_user_config("Recall", {"rollout": new}, app_name)
    return new
