with

source as (
    select * from {{ source('francetravail_rome', 'arborescence_secteur_naf') }}
),

renamed as (
    select
        -- NAF rev. 2 divisions have two digits; the export drops the leading zero.
        lpad({{ clean_text('code_secteur_naf') }}, 2, '0') as naf_division_code,
        {{ clean_text('libelle_secteur_naf') }} as naf_division_label,
        {{ clean_text('code_rome') }} as job_group_code,
        {{ clean_text('code_ogr_rome') }} as job_group_ogr_code,
        {{ clean_text('libelle_rome') }} as job_group_label,
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
            'naf_division_code', 'naf_division_label', 'job_group_code', 'job_group_ogr_code',
            'job_group_label', 'rome_version'
        ]) }} as duplicate_rank
    from renamed
)

select
    naf_division_code,
    naf_division_label,
    job_group_code,
    job_group_ogr_code,
    job_group_label,
    rome_version,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
