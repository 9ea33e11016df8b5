"""An Airflow task that runs a Spark job through sluice: Airflow keeps the DAG, sluice admits the
job only when the cluster can hold its driver and every executor, and the task fails if the job
does (its message and the job id are in the task log)."""

from airflow.decorators import dag, task  # type: ignore[import-not-found]
import pendulum  # type: ignore[import-not-found]

from sluice_client import Client

SPEC = open("/opt/jobs/nightly-etl.yaml").read()


@dag(schedule="@daily", start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def nightly():
    @task
    def etl(ds=None):
        c = Client()  # SLUICE_SERVER / SLUICE_TOKEN from the worker's environment
        job = c.submit(SPEC.replace("{{ ds }}", ds))
        done = c.wait(job["id"], progress=lambda j: print(j["state"], (j.get("wait") or {}).get("reason")))
        if done["state"] != "succeeded":
            raise RuntimeError(f"sluice job {job['id']} {done['state']}: {done.get('message')}")
        return job["id"]

    etl()


nightly()
