-- The customers' reference file another team drops into the landing area each day. When it is
-- late, this model fails, customer_totals is skipped and so is the workflow's `publish` step;
-- once the file is there, `sluice workflow rerun RUN` resumes from this (dbt) step.
select customer, segment
from read_csv(
    '{{ var("warehouse") }}/landing/customers/day={{ var("day") }}.csv',
    header = true,
    hive_partitioning = false
)
