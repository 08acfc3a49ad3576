-- The métier BMO -> ROME allocation shares every métier out completely: its weights sum
-- to 1 (no project counted twice or dropped). Returns the métiers that do not.
select
    job_nomenclature,
    bmo_job_code,
    sum(allocation_weight) as weights_sum
from {{ ref('int_job_classification__bmo_to_rome') }}
group by job_nomenclature, bmo_job_code
having abs(sum(allocation_weight) - 1) > 0.000001
