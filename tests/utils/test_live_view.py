"""cawb/utils/live_view.py: a block redrawn in place on a terminal, one line per milestone elsewhere."""

import io

from cawb.utils.live_view import LiveView


def test_on_a_terminal_the_block_is_redrawn_in_place():
    stream = io.StringIO()
    view = LiveView(stream, interactive=True)
    view.update("2 runs", [("a", "a epoch 1/3", "1"), ("b", "b epoch 1/3", "1")])
    first = stream.getvalue()
    assert first == "2 runs\na epoch 1/3\nb epoch 1/3\n"
    view.update("2 runs", [("a", "a epoch 2/3", "2"), ("b", "b epoch 1/3 ETA 5s", "1")])
    # cursor up the 3 lines drawn, clear to the end of the screen, draw again: no scrolling log of states
    assert stream.getvalue()[len(first):] == "\x1b[3F\x1b[J2 runs\na epoch 2/3\nb epoch 1/3 ETA 5s\n"
    view.message("a FAILED")
    assert stream.getvalue().endswith("\x1b[3F\x1b[Ja FAILED\n2 runs\na epoch 2/3\nb epoch 1/3 ETA 5s\n")


def test_elsewhere_a_row_is_printed_only_when_its_milestone_changes():
    stream = io.StringIO()
    view = LiveView(stream, interactive=False)
    view.update("header", [("a", "a epoch 1 ETA 9s", "1"), ("b", "b waiting", "waiting")])
    view.update("header", [("a", "a epoch 1 ETA 8s", "1"), ("b", "b waiting", "waiting")])  # only the ETA moved
    view.update("header", [("a", "a epoch 2 ETA 4s", "2"), ("b", "b epoch 1", "1")])
    view.message("a FAILED")
    assert stream.getvalue().splitlines() == ["a epoch 1 ETA 9s", "b waiting", "a epoch 2 ETA 4s", "b epoch 1",
                                              "a FAILED"]
    assert "\x1b" not in stream.getvalue()
