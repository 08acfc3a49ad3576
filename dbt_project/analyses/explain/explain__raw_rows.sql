-- Raw rows of one landed file ($path: a raw Parquet file or glob, $file: the landed file's
-- name, $rows: the `_row_number`s): the publisher's values with their provenance columns.
select to_json(r) as payload
from read_parquet($path) as r
where r._source_file = $file and list_contains($rows, r._row_number)
