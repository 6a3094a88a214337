"""Running all of Jobcore on one machine: embedded Redis, an SMTP sink, API, worker."""
