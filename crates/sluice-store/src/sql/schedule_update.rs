//! [`Store::update_schedule`](crate::Store::update_schedule) on SQL: one `UPDATE` of a
//! schedule's definition (what `sluice apply -f` changes), in one transaction.

use sluice_core::schedule::{NewSchedule, ScheduleRecord};

use super::orch::{checked_template, get_schedule_in, to_i64};
use super::pool::SqlStore;
use crate::error::StoreError;

impl SqlStore {
    pub(super) async fn orch_update_schedule(
        &self,
        s: &NewSchedule,
        at_ms: i64,
    ) -> Result<ScheduleRecord, StoreError> {
        let template = checked_template(s)?;
        let mut w = self.begin_write().await?;
        let result = async {
            let done = sqlx::query(
                "UPDATE schedules SET cron = $3, time_zone = $4, concurrency = $5, \
                 missed_runs = $6, catch_up_window_secs = $7, suspended = $8, level = $9, \
                 template = $10, source = $11, updated_at = $12, next_fire_at = $13 \
                 WHERE namespace = $1 AND name = $2",
            )
            .bind(s.namespace.as_str())
            .bind(s.name.as_str())
            .bind(s.cron.as_str())
            .bind(s.time_zone.as_str())
            .bind(s.concurrency.as_str())
            .bind(s.missed_runs.as_str())
            .bind(to_i64(s.catch_up_window_secs))
            .bind(i64::from(s.suspended))
            .bind(s.level.as_str())
            .bind(template.as_str())
            .bind(s.source.as_str())
            .bind(at_ms)
            .bind(s.next_fire_at_ms)
            .execute(&mut *w.tx)
            .await?;
            let missing = || StoreError::NoSchedule {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
            };
            if done.rows_affected() == 0 {
                return Err(missing());
            }
            get_schedule_in(&mut w.tx, &s.namespace, &s.name)
                .await?
                .ok_or_else(missing)
        }
        .await;
        w.finish(result).await
    }
}
