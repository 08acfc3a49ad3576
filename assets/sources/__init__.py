"""One module per published dataset, named by its slug: spec, parse, contract. Nothing else;
the machinery they share lives in `assets.ingest`."""
