select
    region_code,
    name,
    is_overseas,
    departements_count
from {{ ref('dim_region') }}
