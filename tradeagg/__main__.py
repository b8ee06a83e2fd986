"""Entry point: gevent patches the standard library before anything else is imported."""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402


def main() -> None:
    from tradeagg.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()
