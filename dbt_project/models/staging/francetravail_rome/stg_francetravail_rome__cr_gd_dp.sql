with

source as (
    select * from {{ source('francetravail_rome', 'cr_gd_dp') }}
),

renamed as (
    select
        {{ clean_text('code_rome') }} as job_group_code,
        {{ clean_text('libelle_rome') }} as job_group_label,
        {{ clean_text('code_domaine_professionnel') }} as domain_code,
        {{ clean_text('libelle_domaine_professionnel') }} as domain_label,
        {{ clean_text('code_grand_domaine') }} as grand_domain_code,
        {{ clean_text('libelle_grand_domaine') }} as grand_domain_label,
        {{ clean_text('rome_version') }} as rome_version,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'job_group_code', 'job_group_label', 'domain_code', 'domain_label',
            'grand_domain_code', 'grand_domain_label', 'rome_version'
        ]) }} as duplicate_rank
    from renamed
)

select
    job_group_code,
    job_group_label,
    domain_code,
    domain_label,
    grand_domain_code,
    grand_domain_label,
    rome_version,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
