-- Raw rows of one raw table ($path: its Parquet file or glob), by landed file and row
-- number ($files, $rows, $first_row, $last_row: every row of every file asked for, the
-- caller keeps the pairs it wants): the publisher's values with their provenance columns.
select to_json(r) as payload
from read_parquet($path) as r
where
    r._row_number between $first_row and $last_row
    and list_contains($rows, r._row_number)
    and list_contains($files, r._source_file)
