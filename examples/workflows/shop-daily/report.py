"""The `report` step of examples/workflows/shop-daily.yaml: a plain Python job (no Spark).

Reads the day's orders (the CSV part files the Spark SQL step `extract` wrote), prints each
customer's orders and amount, and writes them as JSON to WAREHOUSE/reports/day=DAY.json.

    python report.py WAREHOUSE DAY
"""

import csv
import glob
import json
import os
import sys


def main(warehouse: str, day: str) -> None:
    parts = sorted(glob.glob(os.path.join(warehouse, "orders", f"day={day}", "*.csv")))
    if not parts:
        sys.exit(f"report: no orders for {day} in {warehouse}/orders")
    totals = {}
    for part in parts:
        with open(part, newline="") as f:
            for row in csv.DictReader(f):
                t = totals.setdefault(row["customer"], {"orders": 0, "amount": 0.0})
                t["orders"] += 1
                t["amount"] += float(row["amount"])
    for customer, t in sorted(totals.items()):
        print(f"report: {customer}: {t['orders']} orders, {t['amount']:.2f}")
    out = os.path.join(warehouse, "reports", f"day={day}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        json.dump({"day": day, "customers": totals}, f, sort_keys=True)
    os.replace(out + ".tmp", out)
    print(f"report: {sum(t['orders'] for t in totals.values())} orders of {len(totals)} customers -> {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: report.py WAREHOUSE DAY")
    main(sys.argv[1], sys.argv[2])
