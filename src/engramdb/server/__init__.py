"""The engramdb server: REST API (FastAPI), MCP tools and the web console.

Install with ``pip install 'engramdb[server]'``; run with ``engram serve``. Every route is thin:
it resolves the caller's tenant from the API key, calls :class:`~engramdb.Memory` (through
:class:`~engramdb.aio.AsyncMemory`, so the event loop never blocks) and translates errors into
one JSON shape.
"""
