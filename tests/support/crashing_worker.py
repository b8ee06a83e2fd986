"""``tradeagg worker`` that may die after a commit, before the XACK (fault tests).

``python -m tests.support.crashing_worker`` reads ``TRADEAGG_TEST_CRASH_AFTER_APPLY``
(a probability per batch) and installs it as ``ShardConsumer.before_ack``: the
process then ends at once, as a SIGKILL would, with exit code 86, the Lua call
committed and the entries still pending. The service's own settings know
nothing of it.
"""

from gevent import monkey

monkey.patch_all()  # first, as in tradeagg/__main__.py: this module only runs as a process

import logging  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402

from tests.support.bridge_procs import CRASH_ENV  # noqa: E402
from tradeagg.cli import main  # noqa: E402
from tradeagg.runtime.consumer import ShardConsumer  # noqa: E402

EXIT_CODE = 86


def crash_maybe(probability: float) -> None:
    if random.random() < probability:
        logging.getLogger("tradeagg.worker").warning("test crash after apply, before ack")
        logging.shutdown()
        os._exit(EXIT_CODE)


if __name__ == "__main__":
    p = float(os.environ[CRASH_ENV])
    ShardConsumer.before_ack = staticmethod(lambda: crash_maybe(p))
    sys.exit(main(sys.argv[1:]))
