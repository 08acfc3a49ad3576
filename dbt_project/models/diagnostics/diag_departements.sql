select
    departement_code,
    name,
    region_code,
    region_name,
    is_overseas
from {{ ref('dim_departement') }}
