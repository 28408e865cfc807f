"""Service: the FastAPI app (:mod:`service.app`) and the ``reportqa`` command line (:mod:`service.cli`).

Both sit downstream of ``index``: they load a built index and a retriever, and
never parse or chunk reports themselves (``reportqa ingest`` calls ingest).
"""
