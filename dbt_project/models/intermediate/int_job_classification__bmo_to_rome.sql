{{ config(materialized="table") }}

-- Métier BMO (FAP-2021, 228 level) -> ROME 4.0 fiche, with weights summing to 1 per métier.
--
-- No official FAP-2021 <-> ROME table is embedded. Rule, in order:
-- 1. api: where the "Marché du travail" ROME -> FAP referential gives FAP-2021 codes that
--    are métiers BMO (live API), the métier goes to those fiches, evenly.
-- 2. similarity: otherwise the métier goes to FAP-2009 families of the same domain letter,
--    scored = shared label stems (first 6 letters of words of 4+ letters, between the
--    FAP-2021 labels and the ROME v3 titles DARES lists under the family)
--    + 1 same code (X -> Z) + 1 same 87-level family + 1 same qualification digit.
--    Kept: families scoring >= 2 and >= best - 1 (or the best ones when best < 2);
--    family weight = score / sum of kept scores. A family then goes to its ROME v3 codes
--    evenly (1 / k), and a ROME v3 code to the ROME 4.0 fiches descending from it evenly.
with

metiers as (
    select distinct
        bmo_job_code,
        bmo_job_label
    from {{ ref('stg_francetravail_bmo__projects') }}
    where job_nomenclature = 'fap2021'
),

fiches as (
    select
        job_group_code,
        rome_v3_code
    from {{ ref('stg_francetravail_rome__referentiel_code_rome') }}
),

api_links as (
    select distinct
        api.fap_code as bmo_job_code,
        api.job_group_code
    from {{ ref('stg_francetravail_marche_travail__rome_fap') }} as api
    inner join metiers
        on api.fap_code = metiers.bmo_job_code
    inner join fiches
        on api.job_group_code = fiches.job_group_code
),

api_weighted as (
    select
        bmo_job_code,
        job_group_code,
        cast(null as {{ dbt.type_string() }}) as fap2009_code,
        cast(null as {{ dbt.type_string() }}) as rome_v3_code,
        cast(null as double) as match_score,
        1.0 / count(*) over (partition by bmo_job_code) as allocation_weight,
        'api' as match_rule
    from api_links
),

metier_labels as (
    select
        bmo_job_code,
        bmo_job_label as label
    from metiers
    where bmo_job_code not in (select api_links.bmo_job_code from api_links)
    union all
    select
        fap2021.fap228_code as bmo_job_code,
        fap2021.fap341_label as label
    from {{ ref('stg_dares_fap__fap2021') }} as fap2021
    inner join metiers
        on fap2021.fap228_code = metiers.bmo_job_code
    where fap2021.fap228_code not in (select api_links.bmo_job_code from api_links)
),

metier_words as (
    select
        bmo_job_code,
        {{ label_words('label') }} as word
    from metier_labels
),

metier_stems as (
    select distinct
        bmo_job_code,
        substr(word, 1, 6) as stem
    from metier_words
    where length(word) >= 4
),

family_rome as (
    select distinct
        fap2009_code,
        rome_v3_code,
        rome_v3_label
    from {{ ref('stg_dares_fap__fap2009_rome') }}
    where rome_v3_code is not null
),

family_words as (
    select
        fap2009_code,
        {{ label_words('rome_v3_label') }} as word
    from family_rome
),

family_stems as (
    select distinct
        fap2009_code,
        substr(word, 1, 6) as stem
    from family_words
    where length(word) >= 4
),

families as (
    select distinct fap2009_code
    from family_rome
),

shared_stems as (
    select
        metier_stems.bmo_job_code,
        family_stems.fap2009_code,
        count(*) as shared_count
    from metier_stems
    inner join family_stems
        on metier_stems.stem = family_stems.stem
    group by metier_stems.bmo_job_code, family_stems.fap2009_code
),

candidates as (
    select
        metiers.bmo_job_code,
        families.fap2009_code,
        coalesce(shared_stems.shared_count, 0)
        + case
            when replace(metiers.bmo_job_code, 'X', 'Z') = families.fap2009_code then 1 else 0
        end
        + case
            when
                substr(replace(metiers.bmo_job_code, 'X', 'Z'), 1, 3)
                = substr(families.fap2009_code, 1, 3)
                then 1
            else 0
        end
        + case
            when substr(metiers.bmo_job_code, 4, 1) = substr(families.fap2009_code, 4, 1) then 1
            else 0
        end as match_score
    from metiers
    inner join families
        on substr(metiers.bmo_job_code, 1, 1) = substr(families.fap2009_code, 1, 1)
    left join shared_stems
        on
            metiers.bmo_job_code = shared_stems.bmo_job_code
            and families.fap2009_code = shared_stems.fap2009_code
    where metiers.bmo_job_code not in (select api_links.bmo_job_code from api_links)
),

best as (
    select
        *,
        max(match_score) over (partition by bmo_job_code) as best_score
    from candidates
),

kept as (
    select
        bmo_job_code,
        fap2009_code,
        match_score,
        match_score / sum(match_score) over (partition by bmo_job_code) as family_weight
    from best
    where
        (best_score >= 2 and match_score >= 2 and match_score >= best_score - 1)
        or (best_score < 2 and match_score = best_score and match_score > 0)
),

family_rome_weights as (
    select
        fap2009_code,
        rome_v3_code,
        1.0 / count(*) over (partition by fap2009_code) as rome_v3_weight
    from family_rome
),

fiche_weights as (
    select
        job_group_code,
        rome_v3_code,
        1.0 / count(*) over (partition by rome_v3_code) as fiche_weight
    from fiches
),

similarity_weighted as (
    select
        kept.bmo_job_code,
        fiche_weights.job_group_code,
        kept.fap2009_code,
        family_rome_weights.rome_v3_code,
        cast(kept.match_score as double) as match_score,
        kept.family_weight * family_rome_weights.rome_v3_weight * fiche_weights.fiche_weight
            as allocation_weight,
        'similarity' as match_rule
    from kept
    inner join family_rome_weights
        on kept.fap2009_code = family_rome_weights.fap2009_code
    inner join fiche_weights
        on family_rome_weights.rome_v3_code = fiche_weights.rome_v3_code
),

links as (
    select * from api_weighted
    union all
    select * from similarity_weighted
)

-- One row per (métier, fiche): a fiche reached through several families adds up.
select
    bmo_job_code,
    job_group_code,
    max(match_rule) as match_rule,
    count(distinct fap2009_code) as fap2009_families_count,
    max(match_score) as best_match_score,
    sum(allocation_weight) as allocation_weight
from links
group by bmo_job_code, job_group_code
