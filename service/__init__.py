"""Service: the HTTP API (entry module :mod:`service.app`, route areas in :mod:`service.routes`) and,
on top of everything, the ``reportqa`` command line (:mod:`service.cli`).

The API sits downstream of ``index``: it loads a built index and a retriever, and never parses or
chunks reports itself. It does not import ``eval``; only the command line joins the two.
"""
