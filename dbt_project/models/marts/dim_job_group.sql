with

job_groups as (
    select * from {{ ref('stg_francetravail_rome__referentiel_code_rome') }}
),

domain_links as (
    select * from {{ ref('stg_francetravail_rome__cr_gd_dp') }}
),

domains as (
    select * from {{ ref('stg_francetravail_rome__domaine_professionnel') }}
),

grand_domains as (
    select * from {{ ref('stg_francetravail_rome__grand_domaine') }}
),

job_titles_per_group as (
    select
        job_group_code,
        count(*) as job_titles_count,
        -- At most one principal title per fiche (tested): max() only picks it out.
        max(case when is_principal then label end) as principal_job_title
    from {{ ref('stg_francetravail_rome__referentiel_appellation') }}
    group by job_group_code
)

select
    job_groups.job_group_code,
    job_groups.label,
    job_groups.rome_v3_code,
    domain_links.domain_code,
    -- The domain tables are the reference for labels; the link table repeats them.
    coalesce(domains.label, domain_links.domain_label) as domain_label,
    domain_links.grand_domain_code,
    coalesce(grand_domains.label, domain_links.grand_domain_label) as grand_domain_label,
    job_groups.fiche_code,
    job_groups.ogr_code,
    job_groups.is_executive,
    job_groups.is_regulated,
    job_groups.ecological_transition_label,
    job_groups.digital_transition_label,
    job_groups.demographic_transition_label,
    job_titles_per_group.principal_job_title,
    {{ dbt.cast('coalesce(job_titles_per_group.job_titles_count, 0)', dbt.type_int()) }}
        as job_titles_count,
    job_groups.rome_version
from job_groups
left join domain_links
    on job_groups.job_group_code = domain_links.job_group_code
left join domains
    on domain_links.domain_code = domains.domain_code
left join grand_domains
    on domain_links.grand_domain_code = grand_domains.grand_domain_code
left join job_titles_per_group
    on job_groups.job_group_code = job_titles_per_group.job_group_code
