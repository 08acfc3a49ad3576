-- One row per FAP-2009 family x territory x year. National rows get territory_code 'FR'.
-- The index is centred and scaled on 2014-2018; classes are quintiles of that period
-- (1 = pulls tension down, 5 = pushes it up). Empty cells (not computed) stay NULL.
with

source as (
    select * from {{ source('dares_tensions', 'tensions') }}
),

renamed as (
    select
        upper({{ clean_text('fap') }}) as fap_code,
        replace(lower({{ clean_text('niveau_fap') }}), ' ', '') as fap_level,
        lower({{ clean_text('niveau_geo') }}) as geo_level,
        {{ clean_text('reg') }} as region_code,
        upper({{ clean_text('dep') }}) as raw_departement_code,
        try_cast({{ clean_text('annee') }} as {{ dbt.type_int() }}) as reference_year,
        try_cast({{ clean_text('emploi_moyen') }} as double) as average_employment,
        try_cast({{ clean_text('tension') }} as double) as tension_index,
        {{ clean_text('categorie_tension') }} as c_tension,
        {{ clean_text('intensite_d_embauches') }} as c_hiring,
        {{ clean_text('lien_formation_emploi') }} as c_training,
        {{ clean_text('manque_de_main_d_oeuvre_disponible') }} as c_shortage,
        {{ clean_text('non_durabilite_de_l_emploi') }} as c_durable,
        {{ clean_text('conditions_de_travail_contraignantes') }} as c_working,
        {{ clean_text('inadequation_geographique') }} as c_geo,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

typed as (
    select
        fap_code,
        fap_level,
        geo_level,
        region_code,
        raw_departement_code,
        reference_year,
        average_employment,
        tension_index,
        try_cast(try_cast(c_tension as double) as {{ dbt.type_int() }}) as tension_class,
        try_cast(try_cast(c_hiring as double) as {{ dbt.type_int() }}) as hiring_intensity_class,
        try_cast(try_cast(c_training as double) as {{ dbt.type_int() }}) as training_job_link_class,
        try_cast(try_cast(c_shortage as double) as {{ dbt.type_int() }}) as labour_shortage_class,
        try_cast(try_cast(c_durable as double) as {{ dbt.type_int() }}) as non_durability_class,
        try_cast(try_cast(c_working as double) as {{ dbt.type_int() }}) as working_conditions_class,
        try_cast(try_cast(c_geo as double) as {{ dbt.type_int() }}) as geographic_mismatch_class,
        _source_file,
        _fetched_at,
        _row_number
    from renamed
),

territories as (
    select
        *,
        case geo_level
            when 'nat' then 'national'
            when 'reg' then 'region'
            when 'dep' then 'departement'
        end as territory_type,
        case geo_level
            when 'nat' then 'FR'
            when 'reg' then region_code
            when 'dep' then
                case
                    when length(raw_departement_code) = 1
                        then concat('0', raw_departement_code)
                    else raw_departement_code
                end
        end as territory_code
    from typed
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'fap_code', 'fap_level', 'territory_type', 'territory_code', 'reference_year',
            'average_employment', 'tension_index', 'tension_class', 'hiring_intensity_class',
            'training_job_link_class', 'labour_shortage_class', 'non_durability_class',
            'working_conditions_class', 'geographic_mismatch_class'
        ]) }} as duplicate_rank
    from territories
)

select
    fap_code,
    fap_level,
    territory_type,
    territory_code,
    reference_year,
    cast(average_employment as {{ dbt.type_bigint() }}) as average_employment,
    tension_index,
    tension_class,
    hiring_intensity_class,
    training_job_link_class,
    labour_shortage_class,
    non_durability_class,
    working_conditions_class,
    geographic_mismatch_class,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
