-- A singular test: no customer total may be zero or negative.
select * from {{ ref('customer_totals') }} where total_amount <= 0
