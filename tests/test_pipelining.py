"""Read-ahead and background writes keep order and surface errors."""

import threading

import pytest

from frkit.pipelining import BackgroundWriter, ReadAhead


def test_read_ahead_keeps_order_and_runs_in_another_thread():
    main = threading.get_ident()
    seen = []

    def load(i):
        seen.append(threading.get_ident())
        return i * i

    with ReadAhead(range(10), load, depth=2) as chunks:
        assert [v for _, v in chunks] == [i * i for i in range(10)]
    assert main not in seen


def test_read_ahead_raises_where_the_failing_item_is_used():
    def load(i):
        if i == 3:
            raise ValueError("bad frame 3")
        return i

    got = []
    with pytest.raises(ValueError, match="bad frame 3"):
        with ReadAhead(range(6), load) as chunks:
            for i, v in chunks:
                got.append(v)
    assert got == [0, 1, 2]


def test_read_ahead_stops_when_the_consumer_stops_early():
    with ReadAhead(range(1000), lambda i: i, depth=1) as chunks:
        for i, _ in chunks:
            if i == 2:
                break  # __exit__ must not hang on a full queue


def test_background_writer_order_and_errors():
    out = []
    with BackgroundWriter() as w:
        for i in range(20):
            w.submit(lambda i=i: out.append(i))
        w.flush()
    assert out == list(range(20))

    def boom():
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        with BackgroundWriter() as w:
            w.submit(boom)
            w.flush()

