-- One row per order, typed.
select
    order_id,
    customer,
    cast(amount as decimal(10, 2)) as amount,
    cast(ordered_at as date) as ordered_on,
    amount >= {{ var('large_order') }} as is_large
from {{ ref('raw_orders') }}
