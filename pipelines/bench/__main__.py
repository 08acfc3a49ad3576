"""`python -m pipelines.bench [--scale small|medium|national]` (what `make bench` runs)."""

from pipelines.bench.run import main

raise SystemExit(main())
