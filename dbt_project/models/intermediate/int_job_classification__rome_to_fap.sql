-- ROME 4.0 fiche -> its ROME v3 parent -> FAP-2009 family (DARES table, plus the links it
-- lacks from seeds/fap2009_rome_supplement.csv) -> FAP-2021 domain.
--
-- Split rule: a ROME v3 code that DARES links to n FAP-2009 families gives n rows, each
-- with allocation_weight = 1 / n, so the weights of a fiche sum to 1 and a count attached
-- to the fiche is shared out evenly (no family counted twice, none dropped).
--
-- FAP-2021: no official FAP-2009 <-> FAP-2021 table is embedded, and codes of the same
-- shape do not mean the same family across the two versions (M1Z80 = IT engineers in 2009,
-- M1X80 = IT development technicians in 2021). The only link kept is the professional
-- domain (first letter, the same 22 domains A-X in both versions).
with

fiches as (
    select
        job_group_code,
        label as job_group_label,
        rome_v3_code
    from {{ ref('stg_francetravail_rome__referentiel_code_rome') }}
),

links as (
    select distinct
        rome_v3_code,
        fap2009_code,
        fap2009_87_code
    from {{ ref('stg_dares_fap__fap2009_rome') }}
    where rome_v3_code is not null
    union
    -- Links DARES's table lacks (L1510), each with its reason in the seed.
    select
        rome_v3_code,
        fap2009_code,
        substr(fap2009_code, 1, 3) as fap2009_87_code
    from {{ ref('fap2009_rome_supplement') }}
),

families_per_rome as (
    select
        rome_v3_code,
        count(*) as fap_links_count
    from links
    group by rome_v3_code
),

domains_2021 as (
    select distinct
        domain_code,
        domain_label
    from {{ ref('stg_dares_fap__fap2021') }}
)

select
    fiches.job_group_code,
    fiches.job_group_label,
    fiches.rome_v3_code,
    links.fap2009_code,
    links.fap2009_87_code,
    families_per_rome.fap_links_count,
    domains_2021.domain_code as fap2021_domain_code,
    domains_2021.domain_label as fap2021_domain_label,
    cast(1.0 as double) / nullif(families_per_rome.fap_links_count, 0) as allocation_weight,
    case
        when links.fap2009_code is null then 'no_fap2009_link'
        when families_per_rome.fap_links_count = 1 then 'single'
        else 'split'
    end as link_type
from fiches
left join links
    on fiches.rome_v3_code = links.rome_v3_code
left join families_per_rome
    on fiches.rome_v3_code = families_per_rome.rome_v3_code
left join domains_2021
    on substr(links.fap2009_code, 1, 1) = domains_2021.domain_code
