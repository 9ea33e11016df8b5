-- Per customer: orders, total spent, large orders.
select
    customer,
    count(*) as orders,
    sum(amount) as total_amount,
    sum(case when is_large then 1 else 0 end) as large_orders
from {{ ref('orders') }}
group by customer
