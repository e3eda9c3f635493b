"""The SSE fan-out (controlplane/broker.py): every subscriber of a session gets the same Published message,
encoded once however many listen; a subscriber a queue behind gets RESYNC in place of what it missed;
close() ends every stream, and any opened after it."""

from __future__ import annotations

import json

from controlplane.broker import RESYNC, STOP, Broker, Published


def test_subscribers_of_a_session_share_one_message_encoded_once() -> None:
    broker = Broker()
    queues = [broker.subscribe("s1") for _ in range(20)]
    other = broker.subscribe("s2")
    broker.publish("s1", {"seq": 1, "text": "hi"})
    calls: list[dict] = []

    def encode(item: dict) -> str:
        calls.append(item)
        return json.dumps(item)

    delivered = [q.get_nowait() for q in queues]
    assert all(isinstance(d, Published) for d in delivered)
    assert len({id(d) for d in delivered}) == 1
    assert {d.encoded(encode) for d in delivered if isinstance(d, Published)} == {'{"seq": 1, "text": "hi"}'}
    assert calls == [{"seq": 1, "text": "hi"}]
    assert other.empty()


def test_a_subscriber_a_queue_behind_gets_resync_instead_of_what_it_missed() -> None:
    broker = Broker(queue_size=3)
    slow = broker.subscribe("s1")
    for seq in range(1, 5):
        broker.publish("s1", {"seq": seq})
    assert slow.get_nowait() is RESYNC
    assert slow.empty()


def test_close_ends_every_stream_and_any_opened_after_it() -> None:
    broker = Broker(queue_size=2)
    full = broker.subscribe("s1")
    broker.publish("s1", {"seq": 1})
    broker.publish("s1", {"seq": 2})
    broker.close()
    assert full.get_nowait() is STOP and full.empty()
    late = broker.subscribe("s1")
    assert late.get_nowait() is STOP
    broker.unsubscribe("s1", full)
    broker.unsubscribe("s1", late)
    broker.publish("s1", {"seq": 3})  # nobody listens: nothing to do, nothing raised
