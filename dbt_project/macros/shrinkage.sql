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
    and, named by the argument region_key, the column of the cell's région (text, e.g.
    region_code). A région's cells are the cells of a group with the same region_key and
    totals. Without region_key (simulated inputs of the tests), a région is known by its
    totals alone, and two régions of a group with the same totals are taken as one: the
    marts pass region_key, since régions can tie. In the embedded BMO file, Corse and
    Guyane have the same seasonal totals for some job groups (the same métier's masked
    cells); whether two such sums, taken over different cells, come out equal to the last
    bit depends on the order the engine adds them in, so DuckDB merged the two régions
    and Spark did not.

    Model (per group): a cell's true value is Beta(c m, c (1 - m)) (shares) or
    Gamma(c, c / m) (rates) around its région's mean m, and the régions' means spread
    around France's M with concentration k (variance M (1 - M) / (k + 1), or M^2 / k).
    Each cell's prior mean is its région's value shrunk toward France's by how well the
    région's cells know it, and the prior's variance adds what is left unknown of that mean
    (law of total variance): a région of three small cells, or a single département (the
    overseas ones), leans on France and gets a wider prior. M and the régions' values add
    half an event (Jeffreys), so a pool without events still gives a positive mean.
    c and k are maximum-likelihood values on log-spaced grids, in portable SQL (lgamma
    behind the shrinkage_lgamma seam):
      1. k from the régions' totals around the rest of France (beta-binomial or negative
         binomial), ignoring the cells' own spread;
      2. c from the cells' marginal likelihood (beta-binomial or negative binomial), each
         cell against its région and France without itself, so that a cell never
         predicts itself;
      3. k again, the régions' trials or exposure divided by the design effect of c.
    Each group's log-likelihood is added to that of the average group (a prior over the
    concentration that borrows from all groups): where a group's own cells hardly tell
    (one or two trials each) the groups together decide, elsewhere the group does. No
    floor or cap on the dispersions besides the grids' ends.
    The cell's posterior is the conjugate update of that prior, the same prior for every
    cell of the région (a cell without data, masked or of zero exposure, gets the prior
    itself, confidence low). Data can only narrow it: on the logit (share) or log (rate)
    scale a posterior interval is never wider than its prior's (on the raw scale a
    surprising count can widen it, as exact Bayes does).

    Intervals are 80 % posterior intervals (the 0.1 and 0.9 quantiles). On DuckDB they are
    exact: scipy's inverse incomplete beta and gamma functions, registered on dbt's
    connections by the plugin assets/dbt_udfs.py (assets/quantiles.py). An engine without
    them falls back to closed-form approximations (default__ below). Coverage is checked on
    simulated cells by tests/test_shrinkage.py, and in the corners (tiny counts, shares
    near 0 and 100 %, parameters below 1, huge exposures) by tests/test_interval_coverage.py:
    between 0.77 and 0.83 in each (docs/DESIGN.md has the table).
-#}

{#- Confidence from the effective sample size n (events for a rate, trials for a share):
    high when n >= 100 (relative standard error about 10 % or less), medium when n >= 20,
    low below, and low when the cell has no data. -#}
{% macro confidence_level(effective_sample_size) -%}
    case
        when {{ count_reaches(effective_sample_size, 100) }} then 'high'
        when {{ count_reaches(effective_sample_size, 20) }} then 'medium'
        else 'low'
    end
{%- endmacro %}

{#- `count` >= `threshold`, for a count that is a sum of fractional parts (projects
    allocated with weights, masked cells' EM estimates, mean job seekers): such a sum that
    is the threshold exactly (one project spread over métiers and fiches, a département's
    total made of estimates) comes out a few units in the last place above or below it,
    depending on the order the engine adds the parts in (DuckDB and Spark do not add them
    in the same order). So the threshold is reached within 1e-9 of a count below it. -#}
{% macro count_reaches(count, threshold) -%}
    ({{ count }}) >= {{ threshold }} - 1e-9
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

{#- ln Gamma(x) for x > 0. Dispatch seam: DuckDB's lgamma; elsewhere Stirling's series at
    x + 6 brought back by the recurrence Gamma(x + 1) = x Gamma(x) (error below 1e-10). -#}
{% macro shrinkage_lgamma(x) -%}
    {{ return(adapter.dispatch('shrinkage_lgamma', 'tremplin')(x)) }}
{%- endmacro %}

{% macro duckdb__shrinkage_lgamma(x) -%}
    lgamma({{ x }})
{%- endmacro %}

{% macro default__shrinkage_lgamma(x) -%}
    (
        (({{ x }}) + 5.5) * ln(({{ x }}) + 6.0) - (({{ x }}) + 6.0)
        + 0.9189385332046728
        + 1.0 / (12.0 * (({{ x }}) + 6.0))
        - 1.0 / (360.0 * power(({{ x }}) + 6.0, 3))
        + 1.0 / (1260.0 * power(({{ x }}) + 6.0, 5))
        - 1.0 / (1680.0 * power(({{ x }}) + 6.0, 7))
        - ln(({{ x }}) * (({{ x }}) + 1.0) * (({{ x }}) + 2.0))
        - ln((({{ x }}) + 3.0) * (({{ x }}) + 4.0) * (({{ x }}) + 5.0))
    )
{%- endmacro %}

{#- The dispersions tried: 10^(j / 5) for j = -8 .. 30 (0.025 .. 10^6) for the cells of a
    région around its mean, 10^(j / 2) for j = 0 .. 12 (1 .. 10^6) for the régions around
    France. -#}
{% macro _shrinkage_grid(first=-8, last=30, step=5) -%}
    {%- for j in range(first, last + 1) %}
    select {{ 10 ** (j / step) }} as concentration{% if not loop.last %} union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- A grid score in whole millionths, rounded half up: the precision at which
    _shrinkage_best_concentration compares scores (floor is exact on both engines, and
    whole millionths stay exact in a double while the score is below 9e9 in size). -#}
{% macro _shrinkage_score_units(score) -%}
    floor(({{ score }}) * 1000000.0 + 0.5)
{%- endmacro %}

{#- CTE <name>_best (group_id, concentration): per group, the concentration that maximises
    the group's log-likelihood plus that of the average group (a prior over the
    concentration that borrows from every group: where a group's own cells hardly tell,
    e.g. one or two trials each, the groups together decide), from <name>_likelihood
    (group_id, concentration, log_likelihood); a group without a likelihood takes the
    average group's best, and 1 when there is nothing to fit anywhere. Takes <cells>
    (group_id) for the groups. Followed by a comma.
    Near ties: the scores are compared at a precision of 1e-6 (in log-likelihood units:
    rounded half up to whole millionths, _shrinkage_score_units) and equal rounded scores
    go to the smallest concentration. A score is a sum over cells whose order each engine
    chooses, so its last digits differ between engines (and between plans), and a
    likelihood flatter than 1e-6 between two grid values says nothing. On the embedded
    mirror no two best scores of a group are that close (the smallest gap, 1.4e-6, and
    the choices are the same on DuckDB and Spark): a guard, which moved no DuckDB row. -#}
{% macro _shrinkage_best_concentration(name, cells) -%}
    {{ name }}_scored as (
        select
            group_id,
            concentration,
            log_likelihood + avg(log_likelihood) over (partition by concentration) as score,
            avg(log_likelihood) over (partition by concentration) as average_score
        from {{ name }}_likelihood
    ),

    {{ name }}_own as (
        select
            group_id,
            concentration
        from (
            select
                group_id,
                concentration,
                row_number() over (
                    partition by group_id
                    order by
                        {{ _shrinkage_score_units('score') }} desc nulls last,
                        concentration asc
                ) as score_rank
            from {{ name }}_scored
        ) as ranked
        where score_rank = 1
    ),

    {{ name }}_average as (
        select concentration
        from (
            select
                concentration,
                row_number() over (
                    order by
                        {{ _shrinkage_score_units('max(average_score)') }} desc nulls last,
                        concentration asc
                ) as score_rank
            from {{ name }}_scored
            group by concentration
        ) as ranked
        where score_rank = 1
    ),

    {{ name }}_best as (
        select
            all_groups.group_id,
            coalesce({{ name }}_own.concentration, {{ name }}_average.concentration, 1.0)
                as concentration
        from (select distinct group_id from {{ cells }}) as all_groups
        left join {{ name }}_own
            on all_groups.group_id = {{ name }}_own.group_id
        left join {{ name }}_average
            on 1 = 1
    ),
{%- endmacro %}

{#- The région of a cell as text ('' for every cell without a region_key column). -#}
{% macro _region_key(region_key) -%}
    {%- if region_key -%}
        coalesce({{ dbt.cast(region_key, dbt.type_string()) }}, '')
    {%- else -%}
        ''
    {%- endif -%}
{%- endmacro %}

{#- Gamma-Poisson shrinkage of a rate (events per unit of exposure). Returns one row per
    cell: cell_id, raw_rate, shrunk_rate, low_80, high_80, effective_sample_size,
    confidence_level, prior_rate, prior_level (region / france), has_data (false: the
    estimate is the prior alone). -#}
{% macro gamma_poisson_estimates(cells, region_key=none) -%}
    with

    gp_cells as (
        -- A région without exposure counts as none.
        select
            cell_id,
            group_id,
            {{ _region_key(region_key) }} as region_key,
            case when events >= 0 and exposure > 0 then 1 else 0 end as has_data,
            case when events >= 0 and exposure > 0 then events else 0 end as events,
            case when events >= 0 and exposure > 0 then exposure else 0 end as exposure,
            case when region_exposure > 0 and region_events >= 0 then 1 else 0 end
                as has_region,
            case
                when region_exposure > 0 and region_events >= 0 then region_events else 0
            end as region_events,
            case
                when region_exposure > 0 and region_events >= 0 then region_exposure else 0
            end as region_exposure,
            -- France's totals, else (not published) the région's.
            case
                when national_exposure > 0 and national_events >= 0 then national_events
                else region_events
            end as national_events,
            case
                when national_exposure > 0 and national_events >= 0 then national_exposure
                else region_exposure
            end as national_exposure
        from {{ cells }}
        where
            (national_exposure > 0 and national_events >= 0)
            or (region_exposure > 0 and region_events >= 0)
    ),

    gp_regions as (
        -- One row per région of a group with its sum of squared exposures (cells with data).
        select
            group_id,
            region_key,
            region_events,
            region_exposure,
            national_events,
            national_exposure,
            sum(exposure * exposure) as region_exposure_squares
        from gp_cells
        where has_region = 1
        group by
            group_id, region_key, region_events, region_exposure, national_events,
            national_exposure
    ),

    gp_region_fit as (
        -- Each région against the rest of France (Jeffreys: half an event added), for the
        -- fit of the régions' spread.
        select
            group_id,
            region_events,
            region_exposure,
            least(1.0, region_exposure_squares / (region_exposure * region_exposure))
                as region_index,
            (greatest(national_events - region_events, 0) + 0.5)
            / (national_exposure - region_exposure) as rest_rate
        from gp_regions
        where {{ count_reaches('national_exposure - region_exposure', 1) }}
    ),

    gp_region_first as (
        select
            *,
            cast(null as double) as cell_concentration
        from gp_region_fit
    ),

    {{ _gamma_region_likelihood('gp_spread_first', 'gp_region_first') }}

    {{ _shrinkage_best_concentration('gp_spread_first', 'gp_cells') }}

    gp_informed as (
        -- What a cell's prior is made of. For the fit of c, the région and France without
        -- the cell (rest_*, france_rate; all of France when the cell is all of it); for the
        -- estimate, the whole région and France (pool_*), the same for every cell of the
        -- région, with data or not.
        select
            gp_cells.cell_id,
            gp_cells.group_id,
            case when gp_cells.has_region = 1 then 'region' else 'france' end as prior_level,
            gp_cells.has_data,
            gp_cells.events,
            gp_cells.exposure,
            coalesce(
                (greatest(gp_cells.national_events - gp_cells.events, 0) + 0.5)
                / nullif(greatest(gp_cells.national_exposure - gp_cells.exposure, 0), 0),
                (gp_cells.national_events + 0.5) / gp_cells.national_exposure
            ) as france_rate,
            greatest(gp_cells.region_exposure - gp_cells.exposure, 0) as rest_exposure,
            greatest(gp_cells.region_events - gp_cells.events, 0)
            / nullif(greatest(gp_cells.region_exposure - gp_cells.exposure, 0), 0)
                as rest_rate,
            least(
                1.0,
                greatest(
                    coalesce(gp_regions.region_exposure_squares, 0)
                    - gp_cells.exposure * gp_cells.exposure,
                    0
                )
                / nullif(
                    greatest(gp_cells.region_exposure - gp_cells.exposure, 0)
                    * greatest(gp_cells.region_exposure - gp_cells.exposure, 0),
                    0
                )
            ) as rest_index,
            gp_cells.region_exposure as pool_exposure,
            gp_cells.region_events / nullif(gp_cells.region_exposure, 0) as pool_rate,
            least(
                1.0,
                coalesce(gp_regions.region_exposure_squares, 0)
                / nullif(gp_cells.region_exposure * gp_cells.region_exposure, 0)
            ) as pool_index,
            (gp_cells.national_events + 0.5) / gp_cells.national_exposure as pool_france_rate
        from gp_cells
        left join gp_regions
            on
                gp_cells.group_id = gp_regions.group_id
                and gp_cells.has_region = 1
                and gp_cells.region_key = gp_regions.region_key
                and gp_cells.region_events = gp_regions.region_events
                and gp_cells.region_exposure = gp_regions.region_exposure
                and gp_cells.national_events = gp_regions.national_events
                and gp_cells.national_exposure = gp_regions.national_exposure
    ),

    gp_fit_cells as (
        select
            gp_informed.group_id,
            gp_informed.events,
            gp_informed.exposure,
            gp_informed.france_rate,
            gp_informed.rest_exposure as pool_exposure,
            gp_informed.rest_rate as pool_rate,
            gp_informed.rest_index as pool_index,
            gp_spread_first_best.concentration as region_concentration
        from gp_informed
        inner join gp_spread_first_best
            on gp_informed.group_id = gp_spread_first_best.group_id
        where gp_informed.has_data = 1
    ),

    gp_likelihood as (
        -- A cell's events are negative binomial: mean E m, shape the prior's.
        select
            group_id,
            concentration,
            sum(
                {{ shrinkage_lgamma('events + prior_shape') }}
                - {{ shrinkage_lgamma('prior_shape') }}
                + prior_shape * ln(prior_shape / (prior_shape + exposure * prior_rate))
                + events * ln(exposure * prior_rate / (prior_shape + exposure * prior_rate))
            ) as log_likelihood
        from {{ _gamma_prior_rows('gp_fit_cells', grid=true) }} as gp_fit_prior
        group by group_id, concentration
    ),

    {{ _shrinkage_best_concentration('gp', 'gp_cells') }}

    gp_region_refit as (
        select
            gp_region_fit.group_id,
            gp_region_fit.region_events,
            gp_region_fit.region_exposure,
            gp_region_fit.region_index,
            gp_region_fit.rest_rate,
            gp_best.concentration as cell_concentration
        from gp_region_fit
        inner join gp_best
            on gp_region_fit.group_id = gp_best.group_id
    ),

    {{ _gamma_region_likelihood('gp_spread', 'gp_region_refit') }}

    {{ _shrinkage_best_concentration('gp_spread', 'gp_cells') }}

    gp_chosen as (
        select
            gp_informed.cell_id,
            gp_informed.prior_level,
            gp_informed.has_data,
            gp_informed.events,
            gp_informed.exposure,
            gp_informed.pool_france_rate as france_rate,
            gp_informed.pool_exposure,
            gp_informed.pool_rate,
            gp_informed.pool_index,
            gp_best.concentration,
            gp_spread_best.concentration as region_concentration
        from gp_informed
        inner join gp_best
            on gp_informed.group_id = gp_best.group_id
        inner join gp_spread_best
            on gp_informed.group_id = gp_spread_best.group_id
    ),

    {{ _gamma_prior('gp_prior', 'gp_chosen') }}

    gp_posterior as (
        -- Conjugate update: Gamma(a + y, a / m + E).
        select
            cell_id,
            prior_rate,
            prior_level,
            has_data,
            case when has_data = 1 then events / exposure end as raw_rate,
            events as effective_sample_size,
            prior_shape + events as posterior_shape,
            prior_shape / prior_rate + exposure as posterior_rate
        from gp_prior
    )

    select
        cell_id,
        raw_rate,
        -- The posterior median: inside its interval even when the posterior is skewed (the
        -- mean leaves [q10, q90] when the shape is below 1).
        {{ gamma_quantile('posterior_shape', 'posterior_rate', 0.5) }} as shrunk_rate,
        {{ gamma_quantile('posterior_shape', 'posterior_rate', 0.1) }} as low_80,
        {{ gamma_quantile('posterior_shape', 'posterior_rate', 0.9) }} as high_80,
        effective_sample_size,
        {{ confidence_level('effective_sample_size') }} as confidence_level,
        prior_rate,
        prior_level,
        -- false when the cell has no data: the estimate is then the prior alone.
        has_data = 1 as has_data
    from gp_posterior
{%- endmacro %}

{#- CTE <name>_likelihood: per group and région concentration k (grid), the log-likelihood
    of the régions' events around the rest of France's rate M, negative binomial with shape
    k once events and exposure are divided by the design effect of the cells' own spread,
    1 + M R H / c (c in column cell_concentration; 1 while it is NULL). Followed by a
    comma. -#}
{% macro _gamma_region_likelihood(name, source) -%}
    {{ name }}_effective as (
        select
            {{ source }}.group_id,
            shrinkage_grid.concentration,
            {{ source }}.rest_rate,
            {{ source }}.region_events / coalesce(
                1.0 + {{ source }}.rest_rate * {{ source }}.region_exposure
                * {{ source }}.region_index / {{ source }}.cell_concentration,
                1.0
            ) as events,
            {{ source }}.region_exposure / coalesce(
                1.0 + {{ source }}.rest_rate * {{ source }}.region_exposure
                * {{ source }}.region_index / {{ source }}.cell_concentration,
                1.0
            ) as exposure
        from {{ source }}
        cross join ({{ _shrinkage_grid(0, 12, 2) }}
        ) as shrinkage_grid
    ),

    {{ name }}_likelihood as (
        select
            group_id,
            concentration,
            sum(
                {{ shrinkage_lgamma('events + concentration') }}
                - {{ shrinkage_lgamma('concentration') }}
                + concentration * ln(concentration / (concentration + exposure * rest_rate))
                + events * ln(exposure * rest_rate / (concentration + exposure * rest_rate))
            ) as log_likelihood
        from {{ name }}_effective
        group by group_id, concentration
    ),
{%- endmacro %}

{#- CTE <name>: the rows of <source> with a cell's gamma prior, prior_rate m and prior_shape
    a, for the cell concentration c (column concentration) and the régions'
    k (region_concentration). The région's rate is r = pool_rate over pool_exposure R (H =
    pool_index = sum E^2 / R^2 of its cells), with sampling variance V = M / R + H M^2 / c
    at France's rate M (france_rate); the régions spread around M with variance T = M^2 / k.
    So the région's mean is m = w r + (1 - w) M, w = T / (T + V) (0 when R = 0), known to
    V* = w V (T when R = 0), and the cell's prior has the variance m^2 / c + V* (1 + 1 / c)
    (law of total variance): a = m^2 / that. Followed by a comma. -#}
{% macro _gamma_prior(name, source) -%}
    {{ name }} as (
        select *
        from {{ _gamma_prior_rows(source) }} as prior_rows
    ),
{%- endmacro %}

{#- The rows of _gamma_prior as one derived table (a parenthesised subquery), each row
    once per grid concentration if `grid`. Nested subqueries, not a chain of CTEs: Spark
    (profiles.yml keeps its CTEs shared) writes every CTE out as a shuffle, which for the
    grid rows of a national build came to tens of GB. -#}
{% macro _gamma_prior_rows(source, grid=false) -%}
    (
        select
            *,
            prior_rate * prior_rate / (
                prior_rate * prior_rate / concentration
                + prior_rate_variance * (1.0 + 1.0 / concentration)
            ) as prior_shape
        from (
            select
                *,
                region_weight * coalesce(pool_rate, 0) + (1.0 - region_weight) * france_rate
                    as prior_rate,
                case
                    when region_variance is not null then region_weight * region_variance
                    else spread_variance
                end as prior_rate_variance
            from (
                select
                    *,
                    coalesce(spread_variance / (spread_variance + region_variance), 0)
                        as region_weight
                from (
                    select
                        base.*,
                        base.france_rate * base.france_rate / base.region_concentration
                            as spread_variance,
                        case
                            when base.pool_exposure > 0
                                then base.france_rate / base.pool_exposure
                                + base.pool_index * base.france_rate * base.france_rate
                                / base.concentration
                        end as region_variance
                    from {{ _prior_base(source, grid) }} as base
                ) as variances
            ) as means
        ) as rates
    )
{%- endmacro %}

{#- Beta-binomial shrinkage of a share (events out of exposure trials). Same columns as
    gamma_poisson_estimates, shares as fractions (0-1). -#}
{% macro beta_binomial_estimates(cells, region_key=none) -%}
    with

    bb_cells as (
        -- Events beyond the trials (rounding of estimated counts) count as the trials; a
        -- région without trials counts as none.
        select
            cell_id,
            group_id,
            {{ _region_key(region_key) }} as region_key,
            case when exposure > 0 then events / exposure end as raw_share,
            case when events >= 0 and exposure > 0 then 1 else 0 end as has_data,
            case
                when events > exposure and exposure > 0 then exposure
                when events >= 0 and exposure > 0 then events
                else 0
            end as successes,
            case when events >= 0 and exposure > 0 then exposure else 0 end as trials,
            case when region_exposure > 0 and region_events >= 0 then 1 else 0 end
                as has_region,
            case
                when region_exposure > 0 and region_events >= 0
                    then case
                        when region_events > region_exposure then region_exposure
                        else region_events
                    end
                else 0
            end as region_successes,
            case
                when region_exposure > 0 and region_events >= 0 then region_exposure else 0
            end as region_trials,
            -- France's totals, else (not published) the région's.
            case
                when national_exposure > 0 and national_events >= 0
                    then case
                        when national_events > national_exposure then national_exposure
                        else national_events
                    end
                when region_events > region_exposure then region_exposure
                else region_events
            end as national_successes,
            case
                when national_exposure > 0 and national_events >= 0 then national_exposure
                else region_exposure
            end as national_trials
        from {{ cells }}
        where
            (national_exposure > 0 and national_events >= 0)
            or (region_exposure > 0 and region_events >= 0)
    ),

    bb_regions as (
        -- One row per région of a group with its sum of squared trials (the cells with data).
        select
            group_id,
            region_key,
            region_successes,
            region_trials,
            national_successes,
            national_trials,
            sum(trials * trials) as region_trials_squares
        from bb_cells
        where has_region = 1
        group by
            group_id, region_key, region_successes, region_trials, national_successes,
            national_trials
    ),

    bb_region_fit as (
        -- Each région against the rest of France (Jeffreys: half a success and half a
        -- failure added), for the fit of the régions' spread.
        select
            group_id,
            region_successes,
            region_trials,
            least(1.0, region_trials_squares / (region_trials * region_trials)) as region_index,
            (greatest(national_successes - region_successes, 0) + 0.5)
            / (greatest(national_trials - region_trials, 0) + 1.0) as rest_share
        from bb_regions
        where {{ count_reaches('national_trials - region_trials', 1) }}
    ),

    bb_region_first as (
        select
            *,
            cast(null as double) as cell_concentration
        from bb_region_fit
    ),

    {{ _beta_region_likelihood('bb_spread_first', 'bb_region_first') }}

    {{ _shrinkage_best_concentration('bb_spread_first', 'bb_cells') }}

    bb_informed as (
        -- What a cell's prior is made of. For the fit of c, the région and France without
        -- the cell (rest_*, france_share); for the estimate, the whole région and France
        -- (pool_*), the same for every cell of the région, with data or not.
        select
            bb_cells.cell_id,
            bb_cells.group_id,
            case when bb_cells.has_region = 1 then 'region' else 'france' end as prior_level,
            bb_cells.raw_share,
            bb_cells.has_data,
            bb_cells.successes,
            bb_cells.trials,
            (greatest(bb_cells.national_successes - bb_cells.successes, 0) + 0.5)
            / (greatest(bb_cells.national_trials - bb_cells.trials, 0) + 1.0) as france_share,
            greatest(bb_cells.region_trials - bb_cells.trials, 0) as rest_trials,
            greatest(bb_cells.region_successes - bb_cells.successes, 0)
            / nullif(greatest(bb_cells.region_trials - bb_cells.trials, 0), 0) as rest_share,
            least(
                1.0,
                greatest(
                    coalesce(bb_regions.region_trials_squares, 0)
                    - bb_cells.trials * bb_cells.trials,
                    0
                )
                / nullif(
                    greatest(bb_cells.region_trials - bb_cells.trials, 0)
                    * greatest(bb_cells.region_trials - bb_cells.trials, 0),
                    0
                )
            ) as rest_index,
            bb_cells.region_trials as pool_trials,
            bb_cells.region_successes / nullif(bb_cells.region_trials, 0) as pool_share,
            least(
                1.0,
                coalesce(bb_regions.region_trials_squares, 0)
                / nullif(bb_cells.region_trials * bb_cells.region_trials, 0)
            ) as pool_index,
            (bb_cells.national_successes + 0.5) / (bb_cells.national_trials + 1.0)
                as pool_france_share
        from bb_cells
        left join bb_regions
            on
                bb_cells.group_id = bb_regions.group_id
                and bb_cells.has_region = 1
                and bb_cells.region_key = bb_regions.region_key
                and bb_cells.region_successes = bb_regions.region_successes
                and bb_cells.region_trials = bb_regions.region_trials
                and bb_cells.national_successes = bb_regions.national_successes
                and bb_cells.national_trials = bb_regions.national_trials
    ),

    bb_fit_cells as (
        select
            bb_informed.group_id,
            bb_informed.successes,
            bb_informed.trials,
            bb_informed.france_share,
            bb_informed.rest_trials as pool_trials,
            bb_informed.rest_share as pool_share,
            bb_informed.rest_index as pool_index,
            bb_spread_first_best.concentration as region_concentration
        from bb_informed
        inner join bb_spread_first_best
            on bb_informed.group_id = bb_spread_first_best.group_id
        where bb_informed.has_data = 1
    ),

    bb_likelihood as (
        -- A cell's successes are beta-binomial: its prior, n trials.
        select
            group_id,
            concentration,
            sum(
                {{ shrinkage_lgamma('prior_concentration') }}
                - {{ shrinkage_lgamma('trials + prior_concentration') }}
                + {{ shrinkage_lgamma('successes + prior_share * prior_concentration') }}
                - {{ shrinkage_lgamma('prior_share * prior_concentration') }}
                + {{ shrinkage_lgamma(
                    'trials - successes + (1.0 - prior_share) * prior_concentration'
                ) }}
                - {{ shrinkage_lgamma('(1.0 - prior_share) * prior_concentration') }}
            ) as log_likelihood
        from {{ _beta_prior_rows('bb_fit_cells', grid=true) }} as bb_fit_prior
        group by group_id, concentration
    ),

    {{ _shrinkage_best_concentration('bb', 'bb_cells') }}

    bb_region_refit as (
        select
            bb_region_fit.group_id,
            bb_region_fit.region_successes,
            bb_region_fit.region_trials,
            bb_region_fit.region_index,
            bb_region_fit.rest_share,
            bb_best.concentration as cell_concentration
        from bb_region_fit
        inner join bb_best
            on bb_region_fit.group_id = bb_best.group_id
    ),

    {{ _beta_region_likelihood('bb_spread', 'bb_region_refit') }}

    {{ _shrinkage_best_concentration('bb_spread', 'bb_cells') }}

    bb_chosen as (
        select
            bb_informed.cell_id,
            bb_informed.prior_level,
            bb_informed.raw_share,
            bb_informed.has_data,
            bb_informed.successes,
            bb_informed.trials,
            bb_informed.pool_france_share as france_share,
            bb_informed.pool_trials,
            bb_informed.pool_share,
            bb_informed.pool_index,
            bb_best.concentration,
            bb_spread_best.concentration as region_concentration
        from bb_informed
        inner join bb_best
            on bb_informed.group_id = bb_best.group_id
        inner join bb_spread_best
            on bb_informed.group_id = bb_spread_best.group_id
    ),

    {{ _beta_prior('bb_prior', 'bb_chosen') }}

    bb_posterior as (
        -- Conjugate update: Beta(c' m + x, c' (1 - m) + n - x).
        select
            cell_id,
            raw_share,
            prior_share,
            prior_level,
            has_data,
            trials,
            prior_concentration * prior_share + successes as posterior_a,
            prior_concentration * (1.0 - prior_share) + trials - successes as posterior_b
        from bb_prior
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
    from bb_posterior
{%- endmacro %}

{#- CTE <name>_likelihood: per group and région concentration k (grid), the log-likelihood
    of the régions' successes around the rest of France's share M, beta-binomial with
    concentration k once the trials are divided by the design effect of the cells'
    own spread, (1 - rho) + rho R H (rho = 1 / (c + 1), c in column cell_concentration; 1
    while it is NULL). Followed by a comma. -#}
{% macro _beta_region_likelihood(name, source) -%}
    {{ name }}_effective as (
        select
            {{ source }}.group_id,
            shrinkage_grid.concentration,
            {{ source }}.rest_share,
            {{ source }}.region_successes / coalesce(
                1.0 - 1.0 / ({{ source }}.cell_concentration + 1.0)
                + {{ source }}.region_trials * {{ source }}.region_index
                / ({{ source }}.cell_concentration + 1.0),
                1.0
            ) as successes,
            {{ source }}.region_trials / coalesce(
                1.0 - 1.0 / ({{ source }}.cell_concentration + 1.0)
                + {{ source }}.region_trials * {{ source }}.region_index
                / ({{ source }}.cell_concentration + 1.0),
                1.0
            ) as trials
        from {{ source }}
        cross join ({{ _shrinkage_grid(0, 12, 2) }}
        ) as shrinkage_grid
    ),

    {{ name }}_likelihood as (
        select
            group_id,
            concentration,
            sum(
                {{ shrinkage_lgamma('concentration') }}
                - {{ shrinkage_lgamma('trials + concentration') }}
                + {{ shrinkage_lgamma('successes + rest_share * concentration') }}
                - {{ shrinkage_lgamma('rest_share * concentration') }}
                + {{ shrinkage_lgamma('trials - successes + (1.0 - rest_share) * concentration') }}
                - {{ shrinkage_lgamma('(1.0 - rest_share) * concentration') }}
            ) as log_likelihood
        from {{ name }}_effective
        group by group_id, concentration
    ),
{%- endmacro %}

{#- CTE <name>: the rows of <source> with a cell's beta prior, prior_share m and
    prior_concentration c', for the cell concentration c (column concentration;
    rho = 1 / (c + 1)) and the régions' k (region_concentration). The région's share
    is r = pool_share over pool_trials R (H = pool_index = sum n^2 / R^2 of its cells), with
    sampling variance V = M (1 - M) ((1 - rho) / R + rho H) at France's share M
    (france_share); the régions spread around M with variance T = M (1 - M) / (k + 1). So
    the région's mean is m = w r + (1 - w) M, w = T / (T + V) (0 when R = 0), known to
    V* = w V (T when R = 0), and the cell's prior has the variance m (1 - m) rho +
    V* (1 - rho) (law of total variance): 1 / (c' + 1) = rho + (1 - rho) V* / (m (1 - m)),
    c' never below 0.01 (no beta holds more). Followed by a comma. -#}
{% macro _beta_prior(name, source) -%}
    {{ name }} as (
        select *
        from {{ _beta_prior_rows(source) }} as prior_rows
    ),
{%- endmacro %}

{#- The rows of _beta_prior as one derived table, each row once per grid concentration if
    `grid` (nested subqueries for Spark: see _gamma_prior_rows). -#}
{% macro _beta_prior_rows(source, grid=false) -%}
    (
        select
            *,
            greatest(
                0.01,
                1.0 / (
                    1.0 / (concentration + 1.0)
                    + (1.0 - 1.0 / (concentration + 1.0)) * prior_share_variance
                    / (prior_share * (1.0 - prior_share))
                ) - 1.0
            ) as prior_concentration
        from (
            select
                *,
                region_weight * coalesce(pool_share, 0) + (1.0 - region_weight) * france_share
                    as prior_share,
                case
                    when region_variance is not null then region_weight * region_variance
                    else spread_variance
                end as prior_share_variance
            from (
                select
                    *,
                    coalesce(spread_variance / (spread_variance + region_variance), 0)
                        as region_weight
                from (
                    select
                        base.*,
                        base.france_share * (1.0 - base.france_share)
                        / (base.region_concentration + 1.0) as spread_variance,
                        case
                            when base.pool_trials > 0
                                then base.france_share * (1.0 - base.france_share) * (
                                    (1.0 - 1.0 / (base.concentration + 1.0)) / base.pool_trials
                                    + base.pool_index / (base.concentration + 1.0)
                                )
                        end as region_variance
                    from {{ _prior_base(source, grid) }} as base
                ) as variances
            ) as means
        ) as shares
    )
{%- endmacro %}

{#- The relation a prior starts from: `source`, or (grid) each of its rows once per
    concentration of the cells' grid, in column `concentration`. -#}
{% macro _prior_base(source, grid=false) -%}
    {%- if grid -%}
        (
            select
                {{ source }}.*,
                shrinkage_grid.concentration
            from {{ source }}
            cross join ({{ _shrinkage_grid() }}
            ) as shrinkage_grid
        )
    {%- else -%}
        {{ source }}
    {%- endif -%}
{%- endmacro %}

{#- A percentage from weighted sums, capped at 100 against floating drift; NULL stays NULL
    (least() would turn it into 100). -#}
{% macro cap_at_100(expression) -%}
    case when {{ expression }} > 100 then 100.0 else {{ expression }} end
{%- endmacro %}
