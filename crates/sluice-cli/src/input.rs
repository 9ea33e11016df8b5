//! Reading a document the user names: a file, or standard input for `-`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};

/// The text of `file`, or of standard input when it is `-`.
pub(crate) fn read_file(file: &PathBuf) -> Result<String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}
