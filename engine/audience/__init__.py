"""Audience runs worked through the engine: `entry` takes a run through the profiles a chunk at a
time, in one transaction per chunk, through the same `Engine` as events. It sits above the engine;
the values it works on are in the core: the run record in `engine.runs`, when runs are due in
`engine.schedule`."""
