with

source as (
    select * from {{ source('francetravail_rome', 'referentiel_code_rome') }}
),

renamed as (
    select
        {{ clean_text('code_rome') }} as job_group_code,
        {{ clean_text('libelle_rome') }} as label,
        {{ clean_text('code_rome_parent') }} as rome_v3_code,
        {{ clean_text('code_fiche_metier') }} as fiche_code,
        {{ clean_text('code_ogr') }} as ogr_code,
        {{ clean_text('transition_eco') }} as ecological_transition_label,
        {{ clean_text('transition_num') }} as digital_transition_label,
        {{ clean_text('transition_demo') }} as demographic_transition_label,
        {{ yes_no_to_boolean('emploi_reglemente') }} as is_regulated,
        {{ yes_no_to_boolean('emploi_cadre') }} as is_executive,
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
            'job_group_code', 'label', 'rome_v3_code', 'fiche_code', 'ogr_code',
            'ecological_transition_label', 'digital_transition_label',
            'demographic_transition_label', 'is_regulated', 'is_executive', 'rome_version'
        ]) }} as duplicate_rank
    from renamed
)

select
    job_group_code,
    label,
    rome_v3_code,
    fiche_code,
    ogr_code,
    ecological_transition_label,
    digital_transition_label,
    demographic_transition_label,
    is_regulated,
    is_executive,
    rome_version,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
