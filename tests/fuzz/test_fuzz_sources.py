"""Publisher mutants of every source's mirror files, a few hundred per `make test`.

The short version of `make fuzz` (tests/fuzz/run.py): hypothesis draws a file of the
source and a list of mutations, the mutant goes through landing -> parse -> contract
(`fuzz_harness.SourceBench`), and anything but a clean acceptance or a refusal naming the
source and the file fails the test, shrunk to the smallest mutant hypothesis finds. Replay
one with `python tests/fuzz/run.py --replay SLUG FILE "OPS"`.
"""

from __future__ import annotations

import pytest
from fuzz_harness import SourceBench, mirror_files, source_modules
from fuzz_mutants import Op, load_model, mutate
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.fuzz

# Mutants per source in `make test`: about 200 in all, fewer where one costs seconds.
EXAMPLES = {
    "francetravail_rome": 30,
    "etalab_decoupage_administratif": 40,
    "francetravail_bmo": 2,
    "insee_chomage_localise": 20,
    "insee_chomage_zone_emploi": 20,
    "insee_zonage_ze2020": 4,
    "dares_fap": 30,
    "dares_fap2021_rome": 20,
    "dares_tensions": 10,
    "francetravail_marche_travail": 3,
    "francetravail_offres": 20,
}


@pytest.mark.parametrize("slug", sorted(EXAMPLES))
def test_mutants_are_accepted_clean_or_refused_clearly(slug):
    module = next(m for m in source_modules() if m.SPEC.slug == slug)
    bench = SourceBench(module, gx_every=5)
    models = {path.name: load_model(path) for path in mirror_files(module)}
    number = st.integers(min_value=0, max_value=1_000_000)

    @settings(
        max_examples=EXAMPLES[slug],
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(st.data())
    def mutant(data):
        name = data.draw(st.sampled_from(sorted(models)), label="file")
        model = models[name]
        op = st.builds(Op, st.sampled_from(model.ops), number, number, number)
        ops = data.draw(st.lists(op, min_size=1, max_size=3), label="ops")
        verdict = bench.run(name, mutate(model, ops))
        replay = " ".join(str(o) for o in ops)
        assert verdict.outcome != "failure", (
            f"{slug} {name} at {verdict.stage}: {verdict.message}\n"
            f"replay: python tests/fuzz/run.py --replay {slug} '{name}' '{replay}'"
        )

    try:
        mutant()
    finally:
        bench.close()
