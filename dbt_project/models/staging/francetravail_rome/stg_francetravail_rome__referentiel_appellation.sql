with

source as (
    select * from {{ source('francetravail_rome', 'referentiel_appellation') }}
),

renamed as (
    select
        {{ clean_text('code_ogr') }} as job_title_code,
        {{ clean_text('libelle_appellation_long') }} as label,
        {{ clean_text('libelle_appellation_court') }} as short_label,
        {{ clean_text('code_rome') }} as job_group_code,
        {{ clean_text('code_rome_parent') }} as rome_v3_code,
        upper({{ clean_text('classification') }}) = 'PRINCIPALE' as is_principal,
        {{ yes_no_to_boolean('peu_usite') }} as is_rarely_used,
        {{ clean_text('transition_eco') }} as ecological_transition_label,
        {{ clean_text('transition_num') }} as digital_transition_label,
        {{ clean_text('transition_demo') }} as demographic_transition_label,
        {{ yes_no_to_boolean('emploi_reglemente') }} as is_regulated,
        {{ yes_no_to_boolean('emploi_cadre') }} as is_executive,
        {{ clean_text('origine') }} as origin,
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
            'job_title_code', 'label', 'short_label', 'job_group_code', 'rome_v3_code',
            'is_principal', 'is_rarely_used', 'ecological_transition_label',
            'digital_transition_label', 'demographic_transition_label', 'is_regulated',
            'is_executive', 'origin', 'rome_version'
        ]) }} as duplicate_rank
    from renamed
)

select
    job_title_code,
    label,
    short_label,
    job_group_code,
    rome_v3_code,
    is_principal,
    is_rarely_used,
    ecological_transition_label,
    digital_transition_label,
    demographic_transition_label,
    is_regulated,
    is_executive,
    origin,
    rome_version,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
