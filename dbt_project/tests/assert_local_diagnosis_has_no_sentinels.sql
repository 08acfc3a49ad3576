-- Unknown is NULL, never a magic number: no negative count or ratio (the -1 "no offers"
-- of older tables), and no 0 standing for "unknown" where the inputs are missing (a raw
-- ratio needs its job seekers); a BMO total with masked cells is an estimate, never below
-- its published cells. Returns the keys.
select diagnosis_key
from {{ ref('diag_local_diagnosis') }}
where
    market__offers_per_10_job_seekers < 0
    or market__offers_per_10_job_seekers_shrunk < 0
    or market__offers_count < 0
    or market__job_seekers_avg < 0
    or market__departement_rank < 1
    or hiring__recruitment_projects < 0
    or hiring__published_recruitment_projects < 0
    or offers_trend__last_12_months_count < 0
    or salary__median_monthly_gross_eur <= 0
    or (market__offers_per_10_job_seekers is not null and market__job_seekers_avg is null)
    or hiring__recruitment_projects < hiring__published_recruitment_projects - 1e-6
    or (market__level is null and market__offers_per_10_job_seekers_shrunk is not null)
    or (hiring__level is null and hiring__difficult_pct_shrunk is not null)
