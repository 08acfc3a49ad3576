-- The shrunk contract mix of a cell adds up to 100 (the types are shrunk jointly), and
-- each shrunk share lies inside its own 80 % interval. Returns the cells that break either.
select
    job_group_code,
    departement_code,
    sum(share_pct_shrunk) as shrunk_sum,
    sum(
        case
            when
                share_pct_shrunk < interval_80_low_pct - 1e-9
                or share_pct_shrunk > interval_80_high_pct + 1e-9
                then 1
            else 0
        end
    ) as outside_interval_count
from {{ ref('fct_contract_mix') }}
group by job_group_code, departement_code
having
    abs(sum(share_pct_shrunk) - 100) > 1e-6
    or sum(
        case
            when
                share_pct_shrunk < interval_80_low_pct - 1e-9
                or share_pct_shrunk > interval_80_high_pct + 1e-9
                then 1
            else 0
        end
    ) > 0
