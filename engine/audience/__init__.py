"""Audience runs: scheduled and one-off entry of every profile a journey's `trigger.audience`
matches. `schedule` says when runs happen (cron via croniter, one-off instants); `run` is the
durable record of one run; `entry` takes a run through the profiles a chunk at a time, in one
transaction per chunk, through the same `Engine` as events. Nothing here is imported by this
package's `__init__`, so the core model can use `schedule` without loading the engine."""
