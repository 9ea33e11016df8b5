"""A Prefect flow whose Spark step runs through sluice (capacity-aware admission, priorities,
retries and history in sluice; the flow only waits for the outcome)."""

from prefect import flow, task  # type: ignore[import-not-found]

from sluice_client import Client


@task
def spark_step(spec_path: str, priority: str = "normal") -> str:
    c = Client()
    job = c.submit(open(spec_path).read(), priority=priority)
    done = c.wait(job["id"], progress=lambda j: print(j["id"], j["state"]))
    if done["state"] != "succeeded":
        raise RuntimeError(f"sluice job {job['id']} {done['state']}: {done.get('message')}")
    return job["id"]


@flow
def reporting():
    spark_step("jobs/daily-report.yaml", priority="high")


if __name__ == "__main__":
    reporting()
