"""The extract's pipelining (sfpd.extract.one_ahead): pages produced in a thread one ahead
of the writer, errors and early stops carried across."""

import threading
import time

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
    started = []

    def pages():
        for page in range(10):
            started.append(page)
            yield page

    ahead = one_ahead(pages())
    assert next(ahead) == 0
    time.sleep(0.3)  # time enough for the producer to run ahead, if it would
    assert started == [0, 1]  # page 1 made while page 0 is written, page 2 not yet
    assert list(ahead) == list(range(1, 10))
