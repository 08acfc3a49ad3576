{{ config(materialized="table") }}

-- Métier BMO -> ROME 4.0 fiche through the official DARES crosswalks, with weights that
-- sum to 1 per métier (a métier's projects are shared out, never duplicated nor dropped).
--
-- Links (no label matching):
-- * FAP-2021 métiers (BMO 2024 onward): the métier is a FAP341 family, or a FAP228 one
--   standing for its FAP341 children; DARES's FAP-2021 <-> ROME table links each FAP341
--   family to ROME v3 codes (by qualification);
-- * FAP-2009 métiers (earlier surveys): DARES's FAP-2009 <-> ROME v3 table;
-- * a ROME v3 code leads to the ROME 4.0 fiches whose v3 parent it is (ROME referential).
-- Weights, from real data:
-- * a ROME v3 code reached from several métiers (by qualification) belongs to each in
--   proportion to the métier's national BMO projects (all survey years of the file);
-- * a fiche weighs its employment: the national average employment of the FAP-2009
--   families of its ROME v3 code (DARES, latest year), each family's employment spread
--   over the family's fiches in proportion to their job titles (appellations) in the ROME
--   referential, the fiche's breadth; a fiche whose code has no published family
--   employment takes the mean over fiches;
-- * allocation_weight = ROME share x fiche employment, over its sum for the métier.
with

projects as (
    select
        job_nomenclature,
        bmo_job_code,
        sum(recruitment_projects) as recruitment_projects
    from {{ ref('int_bmo__cells') }}
    group by job_nomenclature, bmo_job_code
),

fap2021_links as (
    -- A métier code that is a FAP341 family maps through it; a FAP228 code through its
    -- FAP341 children (the codes nest by prefix) and through itself where the crosswalk
    -- names the FAP228 code directly (it does for V1X80).
    select distinct
        projects.job_nomenclature,
        projects.bmo_job_code,
        crosswalk.rome_v3_code
    from projects
    inner join {{ ref('stg_dares_fap2021_rome__rome_qualif_fap341') }} as crosswalk
        on
            projects.bmo_job_code = crosswalk.fap341_code
            or substr(crosswalk.fap341_code, 1, 5) = projects.bmo_job_code
    where projects.job_nomenclature = 'fap2021'
),

fap2009_links as (
    select distinct
        projects.job_nomenclature,
        projects.bmo_job_code,
        crosswalk.rome_v3_code
    from projects
    inner join {{ ref('stg_dares_fap__fap2009_rome') }} as crosswalk
        on projects.bmo_job_code = crosswalk.fap2009_code
    where projects.job_nomenclature = 'fap2009' and crosswalk.rome_v3_code is not null
),

links as (
    select
        fap2021_links.*,
        'fap2021_crosswalk' as match_rule
    from fap2021_links
    union all
    select
        fap2009_links.*,
        'fap2009_crosswalk' as match_rule
    from fap2009_links
),

rome_shares as (
    -- The share of a ROME v3 code that belongs to each métier reaching it.
    select
        links.job_nomenclature,
        links.bmo_job_code,
        links.rome_v3_code,
        links.match_rule,
        coalesce(
            projects.recruitment_projects
            / nullif(
                sum(projects.recruitment_projects) over (
                    partition by links.job_nomenclature, links.rome_v3_code
                ),
                0
            ),
            1.0 / count(*) over (partition by links.job_nomenclature, links.rome_v3_code)
        ) as rome_share,
        count(*) over (partition by links.job_nomenclature, links.rome_v3_code)
            as metiers_sharing_rome_count
    from links
    inner join projects
        on
            links.job_nomenclature = projects.job_nomenclature
            and links.bmo_job_code = projects.bmo_job_code
),

fap2009_rome as (
    -- DARES's FAP-2009 <-> ROME links, with the ones it lacks (the ROME -> FAP bridge).
    select distinct
        fap2009_code,
        rome_v3_code
    from {{ ref('int_job_classification__rome_to_fap') }}
    where fap2009_code is not null
),

family_employment as (
    select
        fap_code as fap2009_code,
        average_employment
    from {{ ref('stg_dares_tensions__tensions') }}
    where
        fap_level = 'fap225'
        and territory_type = 'national'
        and reference_year
        = (
            select max(latest.reference_year)
            from {{ ref('stg_dares_tensions__tensions') }} as latest
        )
),

fiches as (
    select
        codes.job_group_code,
        codes.rome_v3_code,
        count(titles.job_title_code) as job_titles_count
    from {{ ref('stg_francetravail_rome__referentiel_code_rome') }} as codes
    left join {{ ref('stg_francetravail_rome__referentiel_appellation') }} as titles
        on codes.job_group_code = titles.job_group_code
    group by codes.job_group_code, codes.rome_v3_code
),

family_fiches as (
    select
        fap2009_rome.fap2009_code,
        fiches.job_group_code,
        greatest(fiches.job_titles_count, 1) as fiche_breadth,
        sum(greatest(fiches.job_titles_count, 1)) over (partition by fap2009_rome.fap2009_code)
            as family_breadth
    from fap2009_rome
    inner join fiches
        on fap2009_rome.rome_v3_code = fiches.rome_v3_code
),

fiche_employment as (
    select
        family_fiches.job_group_code,
        sum(
            family_employment.average_employment
            * family_fiches.fiche_breadth / family_fiches.family_breadth
        ) as employment
    from family_fiches
    inner join family_employment
        on family_fiches.fap2009_code = family_employment.fap2009_code
    group by family_fiches.job_group_code
),

fiche_sizes as (
    select
        fiches.job_group_code,
        fiches.rome_v3_code,
        fiches.job_titles_count,
        coalesce(
            fiche_employment.employment,
            (select avg(known.employment) from fiche_employment as known)
        ) as fiche_employment,
        fiche_employment.employment is not null as fiche_employment_published
    from fiches
    left join fiche_employment
        on fiches.job_group_code = fiche_employment.job_group_code
),

weighted as (
    select
        rome_shares.bmo_job_code,
        rome_shares.job_nomenclature,
        fiche_sizes.job_group_code,
        rome_shares.rome_v3_code,
        rome_shares.match_rule,
        rome_shares.rome_share,
        rome_shares.metiers_sharing_rome_count,
        fiche_sizes.fiche_employment,
        fiche_sizes.fiche_employment_published,
        fiche_sizes.job_titles_count,
        rome_shares.rome_share * fiche_sizes.fiche_employment as raw_weight
    from rome_shares
    inner join fiche_sizes
        on rome_shares.rome_v3_code = fiche_sizes.rome_v3_code
)

select
    bmo_job_code,
    job_nomenclature,
    job_group_code,
    rome_v3_code,
    match_rule,
    rome_share,
    {{ dbt.cast('metiers_sharing_rome_count', dbt.type_int()) }} as metiers_sharing_rome_count,
    fiche_employment,
    fiche_employment_published,
    {{ dbt.cast('job_titles_count', dbt.type_int()) }} as job_titles_count,
    raw_weight / sum(raw_weight) over (partition by job_nomenclature, bmo_job_code)
        as allocation_weight
from weighted
