"""The extract's pipelining (sfpd.extract.one_ahead): pages produced in a thread one ahead
of the writer, errors and early stops carried across."""

import threading

import pytest

from sfpd.extract import one_ahead


def test_items_arrive_in_order_and_an_error_reaches_the_consumer():
    def pages():
        yield from range(5)
        raise RuntimeError("the source failed mid-read")

    got = []
    with pytest.raises(RuntimeError, match="mid-read"):
        for item in one_ahead(pages()):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_a_consumer_that_stops_closes_the_producer():
    closed = threading.Event()

    def pages():
        try:
            yield from range(1000)
        finally:
            closed.set()  # the source's session ends with it

    ahead = one_ahead(pages())
    assert [next(ahead), next(ahead)] == [0, 1]
    ahead.close()  # the lake write failed: the generator is closed
    assert closed.wait(5)


def test_the_producer_runs_one_item_ahead_and_no_further():
    """Each item is started only once the consumer holds the one before it: the consumer keeps
    each item until the producer has started the next (an event, no sleep), and every start
    records how many items the consumer had by then. A producer that ran further ahead would
    start item k + 1 while the consumer still held item k - 1."""
    count = 10
    started = [threading.Event() for _ in range(count)]
    received = 0
    held_at_start = []

    def pages():
        for page in range(count):
            held_at_start.append(received)
            started[page].set()
            yield page

    got = []
    for item in one_ahead(pages()):
        received += 1
        got.append(item)
        if item + 1 < count:  # the next page is made while this one is written
            assert started[item + 1].wait(30), f"page {item + 1} never started"
    assert got == list(range(count))
    # page 0 before anything was handed over; page k once the consumer had k pages
    assert held_at_start == list(range(count))
