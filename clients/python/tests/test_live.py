"""The client against a live sluice server (started by crates/sluice-cli/tests/python_client.rs
with the simulated backend): SLUICE_SERVER points at it, SLUICE_TOKEN holds a token if it needs one.

Run by hand: SLUICE_SERVER=http://127.0.0.1:7467 python3 -m unittest discover -s clients/python/tests
"""

import json
import os
import sys
import time
import unittest
import urllib.request

try:  # the installed package (the suite installs it with pip), else the source tree
    import sluice_client  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from sluice_client import ROUTES, Client, SluiceError  # noqa: E402
from sluice_client.types import JOB_VIEW_KEYS, LOG_CHUNK_KEYS  # noqa: E402

JOB = """# a comment the server keeps
name: py-pi
namespace: py
labels:
  sluice.io/sim-duration: 2s
spark:
  type: Python
  mainApplicationFile: local:///opt/spark/examples/src/main/python/pi.py
  executor:
    instances: 1
"""


def dead_id(entry):
    """The job id of a DLQ entry."""
    return entry.get("id") or entry.get("job", {}).get("id")


def openapi(server):
    with urllib.request.urlopen(server + "/openapi.json", timeout=30) as r:
        return json.load(r)


class Live(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = os.environ["SLUICE_SERVER"]
        cls.c = Client()

    def test_routes_and_fields_match_the_openapi_document(self):
        doc = openapi(self.server)
        for method, path in ROUTES:
            self.assertIn(path, doc["paths"], f"{path} is not in /openapi.json")
            self.assertIn(method, doc["paths"][path], f"{method} {path} is not in /openapi.json")
        schemas = doc["components"]["schemas"]
        job = schemas["JobView"]["properties"]
        for key in JOB_VIEW_KEYS:
            self.assertIn(key, job, f"JobView has no {key}")
        chunk = next(
            s for s in schemas.values() if "next_offset" in s.get("properties", {})
        )["properties"]
        for key in LOG_CHUNK_KEYS:
            self.assertIn(key, chunk, f"the log chunk has no {key}")

    def test_submit_wait_get_logs_and_list(self):
        seen = []
        job = self.c.submit(JOB)
        self.assertEqual(job["state"], "queued")
        self.assertEqual(job["namespace"], "py")
        done = self.c.wait(job["id"], timeout=60, interval=0.2, progress=seen.append)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertGreaterEqual(len(seen), 2, "progress saw the job move")
        got = self.c.describe(job["id"])
        self.assertEqual(got["id"], job["id"])
        self.assertTrue(got["timeline"], got)
        self.assertIn("# a comment the server keeps", got["spec"]["document"])
        chunk = self.c.logs(job["id"])
        self.assertIn("complete", chunk)
        ids = [j["id"] for j in self.c.iter_jobs(namespace="py")]
        self.assertIn(job["id"], ids)

    def test_a_mapping_is_sent_as_json(self):
        spec = {
            "name": "py-dict",
            "namespace": "py",
            "labels": {"sluice.io/sim-duration": "1h"},
            "spark": {"type": "Python", "mainApplicationFile": "local:///x.py"},
        }
        job = self.c.submit(spec, priority="high")
        self.assertEqual(job["level"], "high")
        cancelled = self.c.cancel(job["id"])
        self.assertEqual(cancelled["state"], "cancelled")

    def test_no_token_is_401(self):
        with self.assertRaises(SluiceError) as e:
            Client(token="").list()
        self.assertEqual(e.exception.status, 401)

    def test_a_bad_spec_is_an_error_naming_the_field(self):
        with self.assertRaises(SluiceError) as e:
            self.c.submit("name: bad\nnamespace: py\nspark:\n  driver:\n    cores: lots\n")
        self.assertEqual(e.exception.status, 400)
        self.assertIn("cores", e.exception.message)
        with self.assertRaises(SluiceError) as e:
            self.c.get("no-such-job")
        self.assertEqual(e.exception.status, 404)

    def test_failures_reach_the_dead_letter_queue_and_come_back(self):
        job = self.c.submit(
            "name: py-fail\nnamespace: py\nlabels:\n  sluice.io/sim-duration: 1s\n"
            "  sluice.io/sim-outcome: fail\nspark:\n  type: Python\n"
            "  mainApplicationFile: local:///x.py\n"
        )
        done = self.c.wait(job["id"], timeout=60, interval=0.2)
        self.assertEqual(done["state"], "failed")
        for _ in range(100):
            if any(dead_id(j) == job["id"] for j in self.c.dlq(namespace="py")):
                break
            time.sleep(0.2)
        else:
            self.fail("the failed job never reached the DLQ")
        back = self.c.dlq_requeue(ids=[job["id"]])
        self.assertEqual([j["id"] for j in back["requeued"]], [job["id"]])

    def test_cluster_and_queues(self):
        cluster = self.c.cluster()
        self.assertEqual(cluster["backend"], "simulated")
        self.assertGreater(cluster["capacity_cpu_milli"], 0)
        self.assertIsNotNone(self.c.queues())


if __name__ == "__main__":
    unittest.main()
