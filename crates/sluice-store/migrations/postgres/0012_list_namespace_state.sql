-- The jobs list narrowed to a namespace and a state (`GET /v1/jobs?namespace=N&state=S`) walks
-- this index in page order: with only (namespace, created_at) it read every job of the
-- namespace when few or none were in that state (220-600 ms over 1,000,000 finished jobs in `sluice bench --finished`).
-- Keep in step with ../sqlite/0012_list_namespace_state.sql.
CREATE INDEX jobs_namespace_state_created ON jobs (namespace, state, created_at, id);
