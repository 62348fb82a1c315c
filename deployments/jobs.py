"""The job dispatcher as a Serve deployment: one long-lived replica that Serve keeps alive and restarts."""

from __future__ import annotations

import asyncio
from typing import Any

from ray import serve


@serve.deployment(name="Jobs", max_ongoing_requests=16, ray_actor_options={"num_cpus": 0.1})
class JobsDeployment:
    """``user_config``: ``poll_interval_s``, ``max_concurrent_jobs``."""

    async def __init__(self) -> None:
        from recall_ray.config import get_settings
        from recall_ray.database import Database
        from recall_ray.jobs.runner import Dispatcher

        settings = get_settings()
        self.dispatcher = Dispatcher(settings, Database.from_settings(settings, pool_size=2))
        self.loop_task = asyncio.get_running_loop().create_task(self.dispatcher.loop())

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self.dispatcher.poll_interval_s = float(
            user_config.get("poll_interval_s", self.dispatcher.poll_interval_s)
        )
        self.dispatcher.max_concurrent = int(
            user_config.get("max_concurrent_jobs", self.dispatcher.max_concurrent)
        )

    def kick(self) -> None:
        """New work was queued: claim it now rather than at the next poll."""
        self.dispatcher.kick()

    def status(self) -> dict[str, Any]:
        return {"running": sorted(self.dispatcher.running), "max_concurrent": self.dispatcher.max_concurrent}

    def check_health(self) -> None:
        if self.loop_task.done():
            raise RuntimeError("the job dispatcher loop stopped")
