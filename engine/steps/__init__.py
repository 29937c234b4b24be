"""The steps added to the journey language after the first six, one module each, handed to the
runtime's dispatch table (`engine.runtime`): `digest`, `throttle`, the waits (`wait` with calendar
offsets and `if_past`; `wait_for` with several events and a look-back), what a send checks before
choosing channels (`expires`, journey `limits`), and `needs`, what the loaded journeys need the
store to keep about each user. Pure, like the runtime: they read the `Run` and return the next step."""
