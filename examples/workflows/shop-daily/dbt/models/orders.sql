-- The day's orders, as the Spark SQL step `extract` wrote them (CSV part files).
select
    cast(order_id as bigint) as order_id,
    customer,
    cast(amount as decimal(10, 2)) as amount
from read_csv(
    '{{ var("warehouse") }}/orders/day={{ var("day") }}/*.csv',
    header = true,
    hive_partitioning = false
)
