"""A population for `journey forecast` of the shipped cart-abandonment journey: N people, each
with their own id, email, phone, push token and first name, consents given at their own times, a
mix of engagement histories, and one hypothetical abandoned cart each (its own cart link) at one
of four times of day, priced from a short list.

    python -m benchmarks.forecast_population 100000 /tmp/forecast   # profiles.jsonl, events.jsonl
    journey forecast journeys/cart-abandonment.yaml --profiles /tmp/forecast/profiles.jsonl \\
        --events /tmp/forecast/events.jsonl --runs 10 --json
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

PLACES = [("America/New_York", "+1212", "USD"), ("America/Los_Angeles", "+1415", "USD"),
          ("America/New_York", "+1305", "USD"), ("Europe/London", "+4479", "GBP"),
          ("Europe/Berlin", "+49151", "EUR")]  # each followed by 7 digits (8 in Europe), the first 2 to 9
NAMES = ["Ava", "Mia", "Noah", "Liam", "Emma", "Lena", "Oliver", "Sofia", "Lucas", "Amelia", "Mateo", "Chloe",
         "Hugo", "Ines", "Jonas", "Maya", "Elias", "Nora", "Felix", "Clara", "Leon", "Zoe", "Arthur", "Alice"]
HISTORIES: list[dict[str, Any] | None] = [
    None, None, None,  # new to every channel
    {"push": {"sent": 20, "engaged": 0}, "sms": {"sent": 6, "engaged": 5}},  # reads texts, never opens a push
    {"push": {"sent": 12, "engaged": 7}, "sms": {"sent": 2, "engaged": 1}},  # opens pushes
]
PRICES = [25.0, 45.0, 60.0, 150.0]
HOURS = ["09", "13", "17", "20"]


def person(n: int, rnd: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """One profile and their abandoned cart."""
    zone, prefix, currency = rnd.choice(PLACES)
    user = f"u{n:07d}"
    given = f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:00:00Z"
    profile: dict[str, Any] = {
        "user_id": user, "timezone": zone, "email": f"{user}@example.com",
        "phone": f"{prefix}{rnd.randint(2, 9)}{rnd.randint(0, 999999):06d}" + ("" if prefix.startswith("+1") else "1"),
        "push_token": f"fcm-{rnd.getrandbits(64):016x}", "attributes": {"first_name": rnd.choice(NAMES)},
        "consents": [{"channel": c, "category": "marketing", "granted": True, "source": "signup", "at": given}
                     for c in ("push", "sms", "email")]}
    history = rnd.choice(HISTORIES)
    if history is not None:
        profile["engagement"] = history
    cart = {"id": f"cart-{user}", "type": "cart.abandoned", "user_id": user,
            "timestamp": f"2026-01-05T{rnd.choice(HOURS)}:00:00Z",
            "properties": {"cart_id": f"c-{user}", "value": rnd.choice(PRICES), "items": rnd.randint(1, 4),
                           "currency": currency, "url": f"https://shop.example.com/cart/c-{user}",
                           "discount_code": "CART10"}}
    return profile, cart


def write_population(folder: Path, count: int, seed: int = 1) -> tuple[Path, Path]:
    """`profiles.jsonl` and `events.jsonl` (sorted by time) in `folder`."""
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    profiles, events = folder / "profiles.jsonl", folder / "events.jsonl"
    carts = []
    with open(profiles, "w", encoding="utf-8") as out:
        for n in range(count):
            profile, cart = person(n, rnd)
            out.write(json.dumps(profile) + "\n")
            carts.append(cart)
    carts.sort(key=lambda cart: cart["timestamp"])
    events.write_text("".join(json.dumps(cart) + "\n" for cart in carts), encoding="utf-8")
    return profiles, events


if __name__ == "__main__":
    write_population(Path(sys.argv[2]), int(sys.argv[1]))
