"""One module per published dataset (spec, parse, raw assets, checks) plus the shared
fetch path (`http`, `landing`) and raw validation (`validation`)."""
