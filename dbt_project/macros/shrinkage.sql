{#-
    Empirical-Bayes shrinkage of small cells, shared by the indicator marts.

    Both estimators read a relation with one row per cell and these columns:
      cell_id          text key of the cell (returned as is)
      group_id         the cells that share one dispersion (a job group, or a job group x
                       contract type): the prior's spread is estimated across them
      events           observed count (offers; difficult projects), NULL when masked
      exposure         exposure (mean job seekers) or trials (projects), NULL when masked
      region_events, region_exposure      the same summed over the cell's région
      national_events, national_exposure  the same for France
    The prior mean is the regional value of the group, else the national one. The prior's
    spread comes from the method of moments over the group's cells (weights exposure^2 for
    rates, n(n-1) for shares), floored so that it never claims complete pooling. A cell
    without data (masked, or zero exposure) gets the prior itself, with confidence low.

    Intervals are 80 % posterior intervals (the 0.1 and 0.9 quantiles). On DuckDB they are
    exact: scipy's inverse incomplete beta and gamma functions, registered on dbt's
    connections by the plugin assets/dbt_udfs.py (assets/quantiles.py). An engine without
    them falls back to closed-form approximations (default__ below). Coverage is checked
    on simulated cells, corners included, by tests/test_shrinkage.py.
-#}

{#- Confidence from the effective sample size n (events for a rate, trials for a share):
    high when n >= 100 (relative standard error about 10 % or less), medium when n >= 20,
    low below, and low when the cell has no data. -#}
{% macro confidence_level(effective_sample_size) -%}
    case
        when {{ effective_sample_size }} >= 100 then 'high'
        when {{ effective_sample_size }} >= 20 then 'medium'
        else 'low'
    end
{%- endmacro %}

{#- p-quantile of a Gamma(shape, rate). Dispatch seam: exact on DuckDB (the registered
    scipy function); elsewhere the Wilson-Hilferty cube-root normal approximation,
    floored at 0, until the engine brings a native quantile. -#}
{% macro gamma_quantile(shape, rate, p) -%}
    {{ return(adapter.dispatch('gamma_quantile', 'tremplin')(shape, rate, p)) }}
{%- endmacro %}

{% macro duckdb__gamma_quantile(shape, rate, p) -%}
    tremplin_gamma_quantile({{ shape }}, {{ rate }}, {{ p }})
{%- endmacro %}

{#- The normal quantile of the probabilities the marts ask for, for the approximations. -#}
{% macro _normal_quantile(p) -%}
    {%- set known = {0.1: -1.2815515655446004, 0.5: 0.0, 0.9: 1.2815515655446004} -%}
    {%- if p not in known -%}
        {{ exceptions.raise_compiler_error('no normal quantile for p = ' ~ p) }}
    {%- endif -%}
    {{ return(known[p]) }}
{%- endmacro %}

{% macro default__gamma_quantile(shape, rate, p) -%}
    {%- set z = _normal_quantile(p) -%}
    ({{ shape }}) / ({{ rate }}) * power(
        greatest(
            0.0,
            1.0 - 1.0 / (9.0 * ({{ shape }}))
            + ({{ z }}) * sqrt(1.0 / (9.0 * ({{ shape }})))
        ),
        3
    )
{%- endmacro %}

{#- p-quantile of a Beta(a, b). Fallback: normal approximation on the logit scale, with the
    digamma / trigamma expansions E[logit] ~ ln(a/b) - 1/(2a) + 1/(2b) and
    Var[logit] ~ 1/a + 1/(2a^2) + 1/b + 1/(2b^2); poor when a or b is below 1. -#}
{% macro beta_quantile(a, b, p) -%}
    {{ return(adapter.dispatch('beta_quantile', 'tremplin')(a, b, p)) }}
{%- endmacro %}

{% macro duckdb__beta_quantile(a, b, p) -%}
    tremplin_beta_quantile({{ a }}, {{ b }}, {{ p }})
{%- endmacro %}

{% macro default__beta_quantile(a, b, p) -%}
    {%- set z = _normal_quantile(p) -%}
    1.0 / (1.0 + exp(-(
        ln(({{ a }}) / ({{ b }})) - 1.0 / (2.0 * ({{ a }})) + 1.0 / (2.0 * ({{ b }}))
        + ({{ z }}) * sqrt(
            1.0 / ({{ a }}) + 1.0 / (2.0 * ({{ a }}) * ({{ a }}))
            + 1.0 / ({{ b }}) + 1.0 / (2.0 * ({{ b }}) * ({{ b }}))
        )
    )))
{%- endmacro %}

{#- Gamma-Poisson shrinkage of a rate (events per unit of exposure). Returns one row per
    cell: cell_id, raw_rate, shrunk_rate, low_80, high_80, effective_sample_size,
    confidence_level, prior_rate, prior_level (region / france), has_data (false: the
    estimate is the prior alone). -#}
{% macro gamma_poisson_estimates(cells) -%}
    with

    gp_cells as (
        select
            cell_id,
            group_id,
            events,
            exposure,
            case
                when region_exposure > 0 then region_events / region_exposure
                else national_events / nullif(national_exposure, 0)
            end as prior_rate,
            case when region_exposure > 0 then 'region' else 'france' end as prior_level,
            least(
                0.8,
                coalesce(
                    exposure / nullif(region_exposure, 0),
                    exposure / nullif(national_exposure, 0),
                    0
                )
            ) as leverage
        from {{ cells }}
    ),

    gp_dispersion as (
        -- E[(y - E m)^2] = E m + E^2 cv^2 m^2 under a gamma prior with coefficient of
        -- variation cv around the prior mean m; each cell weighs its exposure E. The
        -- regional mean is estimated from the same cells: a residual is inflated by
        -- 1 / (1 - h), h = the cell's share of its région's exposure (its leverage).
        select
            group_id,
            greatest(
                0.01,
                sum(
                    power(events - exposure * prior_rate, 2) / exposure / (1 - leverage)
                    - prior_rate
                )
                / nullif(sum(exposure * power(prior_rate, 2)), 0)
            ) as cv_squared
        from gp_cells
        where events is not null and exposure > 0 and prior_rate > 0
        group by group_id
    ),

    gp_posterior as (
        select
            gp_cells.cell_id,
            gp_cells.events,
            gp_cells.exposure,
            gp_cells.prior_rate,
            gp_cells.prior_level,
            case when gp_cells.exposure > 0 then gp_cells.events / gp_cells.exposure end
                as raw_rate,
            1.0 / coalesce(gp_dispersion.cv_squared, 0.01)
            + case when gp_cells.exposure > 0 then coalesce(gp_cells.events, 0) else 0 end
                as posterior_shape,
            1.0 / (coalesce(gp_dispersion.cv_squared, 0.01) * gp_cells.prior_rate)
            + case
                when gp_cells.exposure > 0 and gp_cells.events is not null
                    then gp_cells.exposure
                else 0
            end as posterior_rate
        from gp_cells
        left join gp_dispersion
            on gp_cells.group_id = gp_dispersion.group_id
        where gp_cells.prior_rate > 0
    )

    select
        cell_id,
        raw_rate,
        -- The posterior median: inside its interval even when the posterior is skewed (the
        -- mean leaves [q10, q90] when the shape is below 1).
        {{ gamma_quantile('posterior_shape', 'posterior_rate', 0.5) }} as shrunk_rate,
        {{ gamma_quantile('posterior_shape', 'posterior_rate', 0.1) }} as low_80,
        {{ gamma_quantile('posterior_shape', 'posterior_rate', 0.9) }} as high_80,
        case when raw_rate is not null then events else 0 end as effective_sample_size,
        {{ confidence_level('case when raw_rate is not null then events else 0 end') }}
            as confidence_level,
        prior_rate,
        prior_level,
        -- false when the cell has no data: the estimate is then the prior alone.
        raw_rate is not null as has_data
    from gp_posterior
{%- endmacro %}

{#- Beta-binomial shrinkage of a share (events out of exposure trials). Same columns as
    gamma_poisson_estimates, shares as fractions (0-1). -#}
{% macro beta_binomial_estimates(cells) -%}
    with

    bb_cells as (
        select
            cell_id,
            group_id,
            events,
            exposure,
            case
                when region_exposure > 0 then region_events / region_exposure
                else national_events / nullif(national_exposure, 0)
            end as prior_share,
            case when region_exposure > 0 then 'region' else 'france' end as prior_level,
            least(
                0.8,
                coalesce(
                    exposure / nullif(region_exposure, 0),
                    exposure / nullif(national_exposure, 0),
                    0
                )
            ) as leverage
        from {{ cells }}
    ),

    bb_bounded as (
        -- A prior mean of exactly 0 or 1 would make a degenerate beta.
        select
            cell_id,
            group_id,
            events,
            exposure,
            least(0.995, greatest(0.005, prior_share)) as prior_share,
            prior_level,
            leverage
        from bb_cells
        where prior_share is not null
    ),

    bb_dispersion as (
        -- E[(x - n m)^2] = n m (1 - m) (1 + (n - 1) rho), rho = 1 / (concentration + 1);
        -- residuals inflated by 1 / (1 - h) for the cell's leverage h, as for rates.
        select
            group_id,
            least(
                0.5,
                greatest(
                    0.002,
                    sum(
                        power(events - exposure * prior_share, 2) / (1 - leverage)
                        - exposure * prior_share * (1 - prior_share)
                    )
                    / nullif(
                        sum(exposure * (exposure - 1) * prior_share * (1 - prior_share)), 0
                    )
                )
            ) as rho
        from bb_bounded
        where events is not null and exposure > 1
        group by group_id
    ),

    bb_posterior as (
        select
            bb_bounded.cell_id,
            bb_bounded.events,
            bb_bounded.exposure,
            bb_bounded.prior_share,
            bb_bounded.prior_level,
            case when bb_bounded.exposure > 0 then bb_bounded.events / bb_bounded.exposure end
                as raw_share,
            (1.0 / coalesce(bb_dispersion.rho, 0.002) - 1.0) as concentration,
            case
                when bb_bounded.exposure > 0 and bb_bounded.events is not null then 1 else 0
            end as has_data
        from bb_bounded
        left join bb_dispersion
            on bb_bounded.group_id = bb_dispersion.group_id
    ),

    bb_parameters as (
        select
            cell_id,
            raw_share,
            prior_share,
            prior_level,
            has_data,
            case when has_data = 1 then exposure else 0 end as trials,
            concentration * prior_share + has_data * coalesce(events, 0) as posterior_a,
            concentration * (1 - prior_share)
            + has_data * (coalesce(exposure, 0) - coalesce(events, 0)) as posterior_b
        from bb_posterior
    )

    select
        cell_id,
        -- Weighted sums can drift past 1 by a rounding error (least() would skip a NULL).
        case when raw_share > 1 then 1.0 else raw_share end as raw_rate,
        -- The posterior median (see gamma_poisson_estimates).
        {{ beta_quantile('posterior_a', 'posterior_b', 0.5) }} as shrunk_rate,
        {{ beta_quantile('posterior_a', 'posterior_b', 0.1) }} as low_80,
        {{ beta_quantile('posterior_a', 'posterior_b', 0.9) }} as high_80,
        trials as effective_sample_size,
        {{ confidence_level('trials') }} as confidence_level,
        prior_share as prior_rate,
        prior_level,
        -- false when the cell has no data: the estimate is then the prior alone.
        has_data = 1 as has_data
    from bb_parameters
{%- endmacro %}

{#- A percentage from weighted sums, capped at 100 against floating drift; NULL stays NULL
    (least() would turn it into 100). -#}
{% macro cap_at_100(expression) -%}
    case when {{ expression }} > 100 then 100.0 else {{ expression }} end
{%- endmacro %}
