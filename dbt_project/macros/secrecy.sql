{#-
    Statistical secrecy of the BMO survey: estimating the counts behind a masked `*` cell.

    The BMO file lists a (bassin, métier) only where the survey found recruitment projects,
    and replaces every count below the secrecy threshold T by `*`. T is read from the data
    (the smallest published count of the survey year; 5 in 2024), so a masked total lies in
    [1, T - 1] and a masked "difficult" or "seasonal" count in [0, min(T - 1, total)].

    Totals: a masked total is estimated at the middle of its range, T / 2.

    Difficult / seasonal counts: dropping masked cells (or filling the middle of the range)
    biases the national shares, because these counts are concentrated: many métiers have
    no seasonal project in most bassins, while a few have nearly only seasonal ones. Each
    métier's cells are modelled as zero-inflated binomial: with probability 1 - pi a cell
    has none, otherwise its count is Binomial(total, p). pi and p are fitted per métier
    and survey year by EM over all its cells, published ones entering with their value and
    masked ones with the probability of falling under T; a masked cell is then estimated at
    its conditional expectation. Published cells are never changed.
    The binomial terms b(k) = C(n, k) p^k (1 - p)^(n - k) for k < T are computed from
    ln C(n, k) = sum_{j < k} ln((n - j) / (j + 1)), built once per cell by joining a small
    table of k values: only ln, exp and sums, so the macro runs on any engine.
-#}

{#- The values 0 .. max_k, as a relation; a test keeps the observed threshold within. -#}
{% macro _small_integers(max_k=9) -%}
    {%- for k in range(max_k + 1) %}
    select {{ k }} as k{% if not loop.last %} union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- ln C(n, k) for every cell with a published total and every k below its threshold. -#}
{% macro _binomial_terms(cells) -%}
    select
        c.cell_key,
        ks.k,
        c.trials,
        sum(case when js.k < ks.k then ln((c.trials - js.k) / (js.k + 1.0)) else 0 end)
            as ln_choose
    from {{ cells }} as c
    inner join ({{ _small_integers() }}) as ks
        on ks.k < c.threshold and ks.k <= c.trials
    cross join ({{ _small_integers() }}) as js
    where not c.trials_masked and not c.count_published
    group by c.cell_key, ks.k, c.trials
{%- endmacro %}

{#- The E step: for each cell, the probability that it comes from the binomial part
    (`bin_weight`) and its expected count given that part (`bin_count`). A cell whose total
    is masked holds fewer than T projects, so all of its binomial mass lies under T.
    Dispatch seam, for the plan only (same formulas, same values to rounding): DuckDB
    materialises a CTE read twice, so its step reads the previous state twice (once for the
    cell, once for its binomial terms), as it always has, which keeps its sums in the same
    order and its results bit for bit (the shrinkage downstream picks a grid point, and a
    change in the last bits can move a near tie). Spark inlines a CTE at every use: a step
    that reads the previous one twice doubles the plan at each step (2^15 copies of the
    first state after 15). There the step reads the previous state once: each cell gets its
    métier's (pi, p) by one join and its binomial terms under T (none unless its count
    alone is masked) are summed in the same pass. -#}
{% macro _zib_expectations(cells, terms, state) -%}
    {%- if adapter.dispatch('zib_reads_state_once', 'tremplin')() -%}
        {{ _zib_expectations_one_read(cells, terms, state) }}
    {%- else -%}
        {{ _zib_expectations_two_reads(cells, terms, state) }}
    {%- endif -%}
{%- endmacro %}

{% macro default__zib_reads_state_once() -%}
    {{ return(false) }}
{%- endmacro %}

{% macro spark__zib_reads_state_once() -%}
    {{ return(true) }}
{%- endmacro %}

{% macro _zib_expectations_two_reads(cells, terms, state) -%}
    select
        c.cell_key,
        c.group_key,
        c.trials,
        case
            when c.count_published then 1.0
            when c.trials_masked then s.pi
            else s.pi * b.mass / nullif((1.0 - s.pi) + s.pi * b.mass, 0)
        end as bin_weight,
        case
            when c.count_published then c.observed
            when c.trials_masked then c.trials * s.p
            else b.moment / nullif(b.mass, 0)
        end as bin_count
    from {{ cells }} as c
    inner join {{ state }} as s
        on c.group_key = s.group_key
    left join (
        select
            t.cell_key,
            sum(exp(t.ln_choose + t.k * ln(s2.p) + (t.trials - t.k) * ln(1.0 - s2.p))) as mass,
            sum(t.k * exp(t.ln_choose + t.k * ln(s2.p) + (t.trials - t.k) * ln(1.0 - s2.p)))
                as moment
        from {{ terms }} as t
        inner join {{ cells }} as c2
            on t.cell_key = c2.cell_key
        inner join {{ state }} as s2
            on c2.group_key = s2.group_key
        group by t.cell_key
    ) as b
        on c.cell_key = b.cell_key
{%- endmacro %}

{% macro _zib_expectations_one_read(cells, terms, state) -%}
    select
        cell_key,
        group_key,
        trials,
        case
            when count_published then 1.0
            when trials_masked then pi
            else pi * mass / nullif((1.0 - pi) + pi * mass, 0)
        end as bin_weight,
        case
            when count_published then observed
            when trials_masked then trials * p
            else moment / nullif(mass, 0)
        end as bin_count
    from (
        select
            c.cell_key,
            c.group_key,
            c.trials,
            c.trials_masked,
            c.count_published,
            c.observed,
            s.pi,
            s.p,
            sum(exp(t.ln_choose + t.k * ln(s.p) + (t.trials - t.k) * ln(1.0 - s.p))) as mass,
            sum(t.k * exp(t.ln_choose + t.k * ln(s.p) + (t.trials - t.k) * ln(1.0 - s.p)))
                as moment
        from {{ cells }} as c
        inner join {{ state }} as s
            on c.group_key = s.group_key
        left join {{ terms }} as t
            on c.cell_key = t.cell_key
        group by
            c.cell_key, c.group_key, c.trials, c.trials_masked, c.count_published, c.observed,
            s.pi, s.p
    ) as summed
{%- endmacro %}

{#- Zero-inflated binomial estimates of masked counts. `cells` must have: cell_key,
    group_key (métier x year), trials (the cell's total, point estimate), trials_masked,
    observed (the published count or NULL), count_published, threshold. Defines the CTEs
    up to `filled` (cell_key, estimate: the published count, or the conditional
    expectation when masked). -#}
{% macro zero_inflated_binomial_fill(cells, prefix, iterations=15) -%}
    {{ prefix }}_terms as (
        {{ _binomial_terms(cells) }}
    ),

    {{ prefix }}_state_0 as (
        select
            group_key,
            0.5 as pi,
            least(0.999999, greatest(0.000001,
                coalesce(coalesce(sum(observed), 0) / nullif(sum(trials), 0), 0.5)
            )) as p
        from {{ cells }}
        group by group_key
    ),

    {% for i in range(1, iterations + 1) %}
    {{ prefix }}_expected_{{ i }} as (
        {{ _zib_expectations(cells, prefix ~ '_terms', prefix ~ '_state_' ~ (i - 1)) }}
    ),

    {{ prefix }}_state_{{ i }} as (
        select
            group_key,
            least(0.999999, greatest(0.000001, avg(coalesce(bin_weight, 0)))) as pi,
            least(0.999999, greatest(0.000001,
                coalesce(
                    sum(coalesce(bin_weight, 0) * coalesce(bin_count, 0))
                    / nullif(sum(coalesce(bin_weight, 0) * trials), 0),
                    0.5
                )
            )) as p
        from {{ prefix }}_expected_{{ i }}
        group by group_key
    ),

    {% endfor %}
    {{ prefix }}_expected as (
        {{ _zib_expectations(cells, prefix ~ '_terms', prefix ~ '_state_' ~ iterations) }}
    ),

    {{ prefix }}_filled as (
        select
            expected.cell_key,
            case
                when cells.count_published then cells.observed
                else least(
                    cells.trials,
                    cells.threshold - 1,
                    coalesce(expected.bin_weight * expected.bin_count, 0)
                )
            end as estimate
        from {{ prefix }}_expected as expected
        inner join {{ cells }} as cells
            on expected.cell_key = cells.cell_key
    )
{%- endmacro %}
