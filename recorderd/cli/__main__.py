"""``python -m recorderd.cli``: the ``recorderd`` command (what the systemd unit and the benchmarks run)."""

import sys

from recorderd.cli.daemon import daemon_main

sys.exit(daemon_main())
