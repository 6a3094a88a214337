"""``GET /schedules``: each schedule, its next run and its last run's job and state."""

from __future__ import annotations

from datetime import UTC, datetime

import falcon

from jobcore.scheduling.schedules import ScheduleBook


class SchedulesResource:
    def __init__(self, book: ScheduleBook) -> None:
        self.book = book

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": self.book.describe(datetime.now(UTC))}
