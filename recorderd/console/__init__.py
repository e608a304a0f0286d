"""The web console (``recorderd console``): search, the call page, playback decrypted in the browser.

A front end like ``recorderctl``: every act goes through the service layer (recorderd/service/), which
checks the permission and writes the ledger; this package parses requests and renders pages. It runs
as its own process so the daemon stays free of HTTP. The server never decrypts a recording: it hands
the browser the person's key copy and the ciphertext, after the service layer ledgered the access.
"""

from recorderd.console.app import build_app

__all__ = ["build_app"]
