{#-
    Joint empirical-Bayes shrinkage of shares that must add up (the contract mix).

    Shrinking each share on its own (one beta-binomial per category) gives shrunk values
    that no longer add up to 100 %: each is pulled toward its own prior with its own
    spread. Here the categories of a cell are shrunk together with a Dirichlet-multinomial:
    the prior is Dirichlet(c * p_1, ..., c * p_K), p the regional mix of the group (else
    the national one) and c one concentration per group. The posterior is
    Dirichlet(c * p_k + n_k); its mean (c * p_k + n_k) / (c + n) is the shrunk share, and
    these add up to 1 exactly. Each share's 80 % interval is the 0.1 and 0.9 quantiles of
    its marginal, Beta(c * p_k + n_k, c + n - c * p_k - n_k) (exact on DuckDB, see
    shrinkage.sql).

    c is the value of a log-spaced grid (0.1 .. 100,000) that maximises the marginal
    likelihood of the group's cells with data,
        sum over cells of  lgamma(c) - lgamma(c + n) + sum_k lgamma(c p_k + n_k) - lgamma(c p_k)
    (the multinomial coefficients do not depend on c). A group with no cell of data takes
    the median concentration of the other groups: its values are then the prior mix alone
    (has_data false), with intervals as wide as a typical group's prior.

    Input relation, one row per cell x category:
      cell_id, group_id, category, events (count of the category, NULL when unknown),
      exposure (count of all categories of the cell, NULL when unknown), region_events,
      region_exposure, national_events, national_exposure.
    A cell has data when every category has events and exposure > 0.
    Output, one row per cell x category: cell_id, category, raw_rate, shrunk_rate, low_80,
    high_80, effective_sample_size, confidence_level, prior_rate, prior_level, has_data,
    concentration.
-#}

{#- The concentrations tried: 10^(j / 10) for j = -10 .. 50. -#}
{% macro _concentration_grid() -%}
    {%- for j in range(-10, 51) %}
    select {{ 10 ** (j / 10) }} as concentration{% if not loop.last %} union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{% macro dirichlet_multinomial_estimates(cells) -%}
    with

    dm_raw_prior as (
        select
            cell_id,
            group_id,
            category,
            events,
            exposure,
            case
                when region_exposure > 0 then region_events / region_exposure
                else national_events / nullif(national_exposure, 0)
            end as raw_prior_share,
            case when region_exposure > 0 then 'region' else 'france' end as prior_level
        from {{ cells }}
    ),

    dm_prior as (
        -- A category absent from the prior would make a degenerate Dirichlet: every prior
        -- share is kept at 0.5 % or more, then the mix is rescaled to add up to 1.
        select
            cell_id,
            group_id,
            category,
            events,
            exposure,
            prior_level,
            greatest(0.005, raw_prior_share)
            / sum(greatest(0.005, raw_prior_share)) over (partition by cell_id)
                as prior_share,
            min(case when events is not null and exposure > 0 then 1 else 0 end)
                over (partition by cell_id)
                as has_data
        from dm_raw_prior
        where raw_prior_share is not null
    ),

    dm_likelihood as (
        select
            dm_prior.group_id,
            grid.concentration,
            sum(
                {{ ln_gamma('grid.concentration * dm_prior.prior_share + dm_prior.events') }}
                - {{ ln_gamma('grid.concentration * dm_prior.prior_share') }}
            )
            + sum(
                case
                    when dm_prior.category = first_category.category
                        then {{ ln_gamma('grid.concentration') }}
                        - {{ ln_gamma('grid.concentration + dm_prior.exposure') }}
                    else 0
                end
            ) as log_likelihood
        from dm_prior
        inner join (
            select
                cell_id,
                min(category) as category
            from dm_prior
            group by cell_id
        ) as first_category
            on dm_prior.cell_id = first_category.cell_id
        cross join ({{ _concentration_grid() }}) as grid
        where dm_prior.has_data = 1
        group by dm_prior.group_id, grid.concentration
    ),

    dm_concentration as (
        select
            group_id,
            concentration
        from (
            select
                group_id,
                concentration,
                -- Scores compared to 1e-6, as in _shrinkage_best_concentration (the
                -- sum's last digits depend on the engine's order); ties go, as before,
                -- to the larger concentration.
                row_number() over (
                    partition by group_id
                    order by
                        {{ _shrinkage_score_units('log_likelihood') }} desc nulls last,
                        concentration desc
                ) as preference
            from dm_likelihood
        ) as ranked
        where preference = 1
    ),

    dm_typical_concentration as (
        select percentile_cont(0.5) within group (order by concentration) as concentration
        from dm_concentration
    ),

    dm_posterior as (
        select
            dm_prior.cell_id,
            dm_prior.category,
            dm_prior.prior_share,
            dm_prior.prior_level,
            dm_prior.has_data,
            coalesce(
                dm_concentration.concentration, dm_typical_concentration.concentration, 10.0
            ) as concentration,
            case when dm_prior.has_data = 1 then dm_prior.events else 0 end as events,
            case when dm_prior.has_data = 1 then dm_prior.exposure else 0 end as trials,
            case
                when dm_prior.has_data = 1 then dm_prior.events / dm_prior.exposure
            end as raw_share
        from dm_prior
        cross join dm_typical_concentration
        left join dm_concentration
            on dm_prior.group_id = dm_concentration.group_id
    ),

    dm_parameters as (
        select
            *,
            concentration * prior_share + events as posterior_a,
            concentration * (1 - prior_share) + trials - events as posterior_b
        from dm_posterior
    )

    select
        cell_id,
        category,
        raw_share as raw_rate,
        posterior_a / (posterior_a + posterior_b) as shrunk_rate,
        -- The shares are posterior means (so that they add up). A marginal Beta whose first
        -- parameter is well below 1 (a share near 0 with little behind it) has its mean above
        -- its 90 % quantile: the interval is then stretched to reach the mean, and covers more
        -- than 80 %, rather than leaving the published value outside its own interval.
        least(
            {{ beta_quantile('posterior_a', 'posterior_b', 0.1) }},
            posterior_a / (posterior_a + posterior_b)
        ) as low_80,
        greatest(
            {{ beta_quantile('posterior_a', 'posterior_b', 0.9) }},
            posterior_a / (posterior_a + posterior_b)
        ) as high_80,
        trials as effective_sample_size,
        {{ confidence_level('trials') }} as confidence_level,
        prior_share as prior_rate,
        prior_level,
        has_data = 1 as has_data,
        concentration
    from dm_parameters
{%- endmacro %}
