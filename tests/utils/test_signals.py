import os
import signal
import threading

import pytest

from cawb.utils.signals import sigterm_as_ctrl_c


def test_sigterm_inside_the_block_is_ctrl_c_and_the_previous_handler_comes_back():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with pytest.raises(KeyboardInterrupt):
            with sigterm_as_ctrl_c():
                os.kill(os.getpid(), signal.SIGTERM)
                threading.Event().wait(1)  # the handler runs at the next bytecode; this is only a fallback
        os.kill(os.getpid(), signal.SIGTERM)  # the previous handler again, not KeyboardInterrupt
        threading.Event().wait(0.1)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_the_block_runs_and_leaves_the_handler_alone():
    before = signal.getsignal(signal.SIGTERM)
    ran, errors = [], []

    def body():
        try:
            with sigterm_as_ctrl_c():
                ran.append(signal.getsignal(signal.SIGTERM))
        except Exception as error:  # noqa: BLE001 - the test reports it
            errors.append(error)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert errors == [] and ran == [before]
    assert signal.getsignal(signal.SIGTERM) is before
