"""The `Links` port on every backend (memory, SQLite cached and not, PostgreSQL): a message's tracked
links are kept with it, every hit is counted on its link, the message's first hit of each kind
(by a person, by a machine; its links apart from its pixel) is counted once however many come at
once, a code of the other kind or of no link counts nothing, and an erased person's codes are gone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

import pytest

from channels.links import TrackedLink
from engine.ports import HostStore, LinkHit, Store, carry_out
from engine.state import Outcome
from tests.stores.test_store_contract import Boom, at, send

CART, HELP = "https://shop.example.com/cart?id=42", "https://shop.example.com/help"
LINKS = (TrackedLink("Cart000001", CART), TrackedLink("Help000001", HELP), TrackedLink("Pixel00001", None))


def host(store: Store) -> HostStore:
    return cast(HostStore, store)


def sent_with_links(store: Store, message_id: str = "m1", user_id: str = "u1",
                    links: tuple[TrackedLink, ...] = LINKS) -> None:
    with store.transaction() as tx:
        carry_out(tx, Outcome(None, [send(message_id, user_id=user_id, channel="email", links=links)]))


def hit(store: Store, code: str, pixel: bool = False, machine: bool = False, minutes: float = 1) -> LinkHit | None:
    return host(store).links.hit(code, pixel, machine, at(minutes))


def shown(store: Store, user_id: str = "u1") -> dict[str, list[dict[str, Any]]]:
    return {m["message_id"]: m["links"] for m in host(store).views.messages_for_user(user_id)}


def test_every_hit_is_counted_on_its_link_and_shown_with_its_message_without_the_code(store: Store) -> None:
    sent_with_links(store)
    assert shown(store) == {"m1": [
        {"url": CART, "hits": 0, "machine_hits": 0, "first_hit_at": None, "last_hit_at": None},
        {"url": HELP, "hits": 0, "machine_hits": 0, "first_hit_at": None, "last_hit_at": None},
        {"url": None, "hits": 0, "machine_hits": 0, "first_hit_at": None, "last_hit_at": None}]}
    assert hit(store, "Cart000001", minutes=1) == LinkHit("m1", "u1", "email", CART, 1, True)
    assert hit(store, "Cart000001", machine=True, minutes=2) == LinkHit("m1", "u1", "email", CART, 2, True)
    assert hit(store, "Cart000001", minutes=3) == LinkHit("m1", "u1", "email", CART, 3, False)
    assert hit(store, "Pixel00001", pixel=True, minutes=4) == LinkHit("m1", "u1", "email", None, 1, True)
    [cart, help_link, pixel] = shown(store)["m1"]
    assert cart == {"url": CART, "hits": 3, "machine_hits": 1, "first_hit_at": at(1), "last_hit_at": at(3)}
    assert help_link["hits"] == 0 and (pixel["hits"], pixel["first_hit_at"]) == (1, at(4))
    assert "Cart000001" not in repr(host(store).views.messages_for_user("u1"))


def test_the_first_hit_of_each_kind_is_the_messages_not_the_links(store: Store) -> None:
    """A person's click on a second link of the message is not its first; the pixel's opens are
    their own kind; another message's links count apart."""
    sent_with_links(store)
    sent_with_links(store, "m2", links=(TrackedLink("Cart000002", CART),))
    first = [hit(store, "Cart000001"), hit(store, "Help000001"), hit(store, "Help000001", machine=True),
             hit(store, "Cart000001", machine=True), hit(store, "Pixel00001", pixel=True),
             hit(store, "Cart000002")]
    assert [(h.message_id, h.first) for h in first if h is not None] == [
        ("m1", True), ("m1", False), ("m1", True), ("m1", False), ("m1", True), ("m2", True)]


def test_a_code_of_no_link_or_of_the_other_kind_counts_nothing(store: Store) -> None:
    sent_with_links(store)
    assert hit(store, "Nothing0001") is None
    assert hit(store, "Pixel00001", pixel=False) is None  # the pixel's code is no link
    assert hit(store, "Cart000001", pixel=True) is None  # a link's code is no pixel
    assert all(link["hits"] == 0 for link in shown(store)["m1"])


def test_links_are_written_with_their_message_or_not_at_all(store: Store) -> None:
    with pytest.raises(Boom), store.transaction() as tx:
        carry_out(tx, Outcome(None, [send("m1", channel="email", links=LINKS)]))
        raise Boom
    assert hit(store, "Cart000001") is None and shown(store) == {}


def test_an_erased_persons_codes_answer_nothing_and_others_still_do(store: Store) -> None:
    sent_with_links(store)
    sent_with_links(store, "m2", user_id="u2", links=(TrackedLink("Cart000002", CART),))
    assert host(store).privacy.erase_user("u1", at(5), lambda tx: None) is not None
    assert hit(store, "Cart000001") is None and hit(store, "Pixel00001", pixel=True) is None
    assert shown(store) == {"m1": []}  # the message stays, its content and links gone
    found = hit(store, "Cart000002")
    assert found is not None and found.user_id == "u2"


def test_hits_at_once_on_one_messages_links_count_one_first(store: Store) -> None:
    """Eight people-hits at the same moment (threads past one barrier) on the two links of one
    message, for five messages in turn: every hit counted, exactly one of each message's the first."""
    rounds = 5
    for n in range(rounds):
        sent_with_links(store, f"m{n}", links=(TrackedLink(f"Cart{n:06d}", CART), TrackedLink(f"Help{n:06d}", HELP)))
    firsts = []
    for n in range(rounds):
        results = at_once([f"Cart{n:06d}", f"Help{n:06d}"] * 4, lambda code: hit(store, code))
        firsts.append(sum(1 for r in results if r is not None and r.first))
        assert sorted(link["hits"] for link in shown(store)[f"m{n}"]) == [4, 4]
    assert firsts == [1] * rounds


def at_once(codes: list[str], call: Callable[[str], LinkHit | None]) -> list[LinkHit | None]:
    """`call` for each code, each in its thread, all released together."""
    barrier = threading.Barrier(len(codes))
    results: list[LinkHit | None] = []
    errors: list[BaseException] = []

    def one(code: str) -> None:
        barrier.wait()
        try:
            results.append(call(code))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(results) == len(codes)
    return results
