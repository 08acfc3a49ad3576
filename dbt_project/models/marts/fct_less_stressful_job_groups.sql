-- For each ROME 4.0 fiche and département, up to 5 fiches reachable through the ROME
-- mobility links (fct_job_group_mobility) whose market in the same département is clearly
-- better. Rule: the target's shrunk offers per 10 job seekers is at least 1.2 x the
-- source's, and the lower bound of its 80 % interval is above the source's shrunk value;
-- ordered by the target's shrunk value (highest first), then the ROME order of the link.
-- The ROME 4.0 export gives no mobility type: mobility_type is derived, same_domain when
-- both fiches share a professional domain, other_domain otherwise.
with

market as (
    select * from {{ ref('int_market__job_group_departement') }}
),

fiches as (
    select
        job_group_code,
        domain_code
    from {{ ref('dim_job_group') }}
),

candidates as (
    select
        origin.job_group_code,
        origin.departement_code,
        moves.to_job_group_code as target_job_group_code,
        moves.to_label as target_label,
        moves.order_number as mobility_order_number,
        origin.offers_per_10_job_seekers_shrunk as source_offers_per_10_job_seekers_shrunk,
        destination.offers_per_10_job_seekers_shrunk as target_offers_per_10_job_seekers_shrunk,
        destination.interval_80_low as target_interval_80_low,
        destination.interval_80_high as target_interval_80_high,
        destination.confidence_level as target_confidence_level,
        destination.market_level as target_market_level,
        case
            when from_fiche.domain_code = to_fiche.domain_code then 'same_domain'
            else 'other_domain'
        end as mobility_type,
        origin.is_synthetic or destination.is_synthetic as is_synthetic
    from market as origin
    inner join {{ ref('fct_job_group_mobility') }} as moves
        on origin.job_group_code = moves.from_job_group_code
    inner join market as destination
        on
            moves.to_job_group_code = destination.job_group_code
            and origin.departement_code = destination.departement_code
    inner join fiches as from_fiche
        on moves.from_job_group_code = from_fiche.job_group_code
    inner join fiches as to_fiche
        on moves.to_job_group_code = to_fiche.job_group_code
    where
        destination.offers_per_10_job_seekers_shrunk
        >= 1.2 * origin.offers_per_10_job_seekers_shrunk
        and destination.interval_80_low > origin.offers_per_10_job_seekers_shrunk
),

ranked as (
    select
        *,
        row_number() over (
            partition by job_group_code, departement_code
            order by target_offers_per_10_job_seekers_shrunk desc, mobility_order_number asc
        ) as suggestion_rank
    from candidates
)

select
    job_group_code,
    departement_code,
    {{ dbt.cast('suggestion_rank', dbt.type_int()) }} as suggestion_rank,
    target_job_group_code,
    target_label,
    mobility_type,
    {{ dbt.cast('mobility_order_number', dbt.type_int()) }} as mobility_order_number,
    source_offers_per_10_job_seekers_shrunk,
    target_offers_per_10_job_seekers_shrunk,
    target_interval_80_low,
    target_interval_80_high,
    target_confidence_level,
    target_market_level,
    is_synthetic
from ranked
where suggestion_rank <= 5
