//! A plain command job: an argv run on the backend's host, and its field checks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Controls, SpecError, Text, check_text};
use crate::secretref::SecretRef;

/// A plain command job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CommandSpec {
    /// Program and arguments; no shell is involved.
    #[serde(default)]
    pub argv: Vec<Text>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Text>,
    /// Environment variables taken from secrets, resolved when the run starts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_env: BTreeMap<String, SecretRef>,
    /// CPU to reserve: cores ("2", "0.5") or millicores ("500m"); default 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>, default = "1"))]
    pub cpu: Option<Text>,
    /// Memory to reserve, like "512m"; default 1g.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>, default = "1g"))]
    pub memory: Option<Text>,
    /// Working directory; default the backend's run directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// Field checks of a command job; quantities are checked by sizing.
pub(crate) fn validate_command(c: &CommandSpec) -> Result<(), SpecError> {
    for (i, a) in c.argv.iter().enumerate() {
        check_text(
            &format!("command.argv[{i}]"),
            a.as_str(),
            Controls::Whitespace,
        )?;
    }
    for (k, v) in &c.env {
        check_text(&format!("command.env.{k}"), k, Controls::None)?;
        check_text(
            &format!("command.env.{k}"),
            v.as_str(),
            Controls::Whitespace,
        )?;
    }
    if let Some(w) = &c.working_dir {
        check_text("command.workingDir", w, Controls::None)?;
    }
    if c.argv.is_empty() || c.argv[0].as_str().trim().is_empty() {
        return Err(SpecError::Missing {
            field: "command.argv".into(),
            hint: "the program to run and its arguments, like [\"python3\", \"job.py\"]".into(),
        });
    }
    Ok(())
}
