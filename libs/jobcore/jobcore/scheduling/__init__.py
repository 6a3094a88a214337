"""Cron expressions and the schedules that submit jobs on a clock."""
