-- The mart: per customer and segment, the day's orders and amount, written to the warehouse as
-- Parquet partitioned by day (WAREHOUSE/customer_totals/day=DAY/) for the workflow's last step,
-- a PySpark job, to publish.
{{ config(
    materialized = 'external',
    location = var('warehouse') ~ '/customer_totals',
    options = {'partition_by': 'day', 'overwrite_or_ignore': true}
) }}
select
    o.customer,
    c.segment,
    count(*) as orders,
    cast(sum(o.amount) as double) as total_amount,
    '{{ var("day") }}' as day
from {{ ref('orders') }} o
join {{ ref('customers') }} c using (customer)
group by o.customer, c.segment
