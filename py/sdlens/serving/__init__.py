"""Serving the browser app: what it is made of (app_files), an HTTP(S) server for it (server),
a classroom network (lan), and the same files as a static site (site). CPython only, standard
library only (the LAN certificate and QR code use the optional `sdlens[lan]` extra).

Pyodide is never sent this package: the browser needs none of it."""
