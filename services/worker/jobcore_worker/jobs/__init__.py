"""The built-in job implementations, by job type name."""

from __future__ import annotations

from jobcore.execution.job_lifecycle import JobFunction
from jobcore_worker.jobs import cleanup, csv_export, dummy, email, report

IMPLEMENTATIONS: dict[str, JobFunction] = {
    "welcome-email": email.send_welcome_email,
    "email": email.send_email,
    "report": report.build_report,
    "csv-export": csv_export.write_csv,
    "dummy": dummy.run_dummy,
    "cleanup": cleanup.run_cleanup,
}
