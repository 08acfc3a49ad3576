"""The read-only HTTP API (`tremplin serve`): app.py (routes, validation, caching headers),
openapi.py (the document, from the export JSON Schemas), server.py (uvicorn), bench.py
(`make bench-api`)."""
