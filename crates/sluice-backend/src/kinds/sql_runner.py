"""sluice's Spark SQL runner: runs a sparkSql job's statements in one Spark session.

Written into the run's directory by sluice and started by spark-submit with the job's conf.
The statements come as a JSON list, from a file (--statements FILE) or from the argument itself
(--statements-json TEXT, as a Kubernetes SparkApplication passes them). Each statement's row
count is printed; a failing statement is named by its number and the run exits with code 1.
"""

import json
import sys


def read_statements(argv):
    if len(argv) == 2 and argv[0] == "--statements":
        with open(argv[1], encoding="utf-8") as f:
            return json.load(f)
    if len(argv) == 2 and argv[0] == "--statements-json":
        return json.loads(argv[1])
    print("usage: sluice_sql_runner.py --statements FILE | --statements-json TEXT", file=sys.stderr)
    sys.exit(2)


def main():
    statements = read_statements(sys.argv[1:])
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    n = len(statements)
    for i, statement in enumerate(statements, 1):
        head = " ".join(statement.split())
        if len(head) > 100:
            head = head[:100] + "..."
        print(f"sluice-sql: statement {i}/{n}: {head}", flush=True)
        try:
            df = spark.sql(statement)
            rows = df.count() if df.columns else 0
            if rows:
                df.show(20, truncate=False)
        except Exception as e:  # noqa: BLE001 - every error ends the run, named by statement
            message = str(e).strip().splitlines()
            print(
                f"sluice-sql: statement {i}/{n} failed: {message[0] if message else type(e).__name__}",
                file=sys.stderr,
                flush=True,
            )
            for line in message[1:20]:
                print(f"sluice-sql:   {line}", file=sys.stderr)
            spark.stop()
            sys.exit(1)
        print(f"sluice-sql: statement {i}/{n}: {rows} rows", flush=True)
    print(f"sluice-sql: {n} statements succeeded", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
