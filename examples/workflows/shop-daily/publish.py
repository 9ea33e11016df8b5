"""The `publish` step of examples/workflows/shop-daily.yaml: a PySpark job.

Reads the day's mart (the Parquet dbt's `customer_totals` model wrote), checks it against the
`report` step's totals, prints it, and publishes it as one CSV file per day under
WAREHOUSE/published/day=DAY.

    spark-submit publish.py WAREHOUSE DAY
"""

import json
import os
import sys

from pyspark.sql import SparkSession


def main(warehouse: str, day: str) -> None:
    spark = SparkSession.builder.appName(f"shop-daily-publish-{day}").getOrCreate()
    mart = spark.read.parquet(os.path.join(warehouse, "customer_totals", f"day={day}"))
    rows = mart.orderBy("customer").collect()
    with open(os.path.join(warehouse, "reports", f"day={day}.json")) as f:
        report = json.load(f)["customers"]
    for r in rows:
        print(f"publish: {r.customer} ({r.segment}): {r.orders} orders, {r.total_amount:.2f}")
        expected = report.get(r.customer, {}).get("orders")
        if expected != r.orders:
            sys.exit(f"publish: {r.customer}: the mart has {r.orders} orders, the report {expected}")
    mart.coalesce(1).write.mode("overwrite").option("header", True).csv(
        os.path.join(warehouse, "published", f"day={day}")
    )
    print(f"publish: {len(rows)} customers published for {day}")
    spark.stop()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: publish.py WAREHOUSE DAY")
    main(sys.argv[1], sys.argv[2])
