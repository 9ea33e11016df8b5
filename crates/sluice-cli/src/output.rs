//! How the get and list commands print, as kubectl does: `-o table` (the default), `-o wide`
//! (more columns), `-o json`, `-o yaml`, `-o name` (`KIND/NAMESPACE/NAME` lines), and
//! `--no-headers`. Tables are elastic: each column as wide as its widest cell (comfy-table),
//! columns three spaces apart, no borders.

use std::sync::OnceLock;

use anyhow::Result;
use clap::ValueEnum;
use comfy_table::{CellAlignment, presets::NOTHING};

/// An output format.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// A table (the default).
    Table,
    /// A table with more columns.
    Wide,
    /// JSON: the API's objects.
    Json,
    /// YAML: the API's objects (`get ID -o yaml`: the resubmittable document).
    Yaml,
    /// One `KIND/NAMESPACE/NAME` line per object.
    Name,
}

impl Output {
    /// A table, plain or wide.
    pub fn is_table(self) -> bool {
        matches!(self, Output::Table | Output::Wide)
    }
}

/// `--no-headers`, set once from the command line (a global flag, like `--server`).
static NO_HEADERS: OnceLock<bool> = OnceLock::new();

/// Records `--no-headers` for every table this process prints.
pub fn set_no_headers(v: bool) {
    let _ = NO_HEADERS.set(v);
}

fn no_headers() -> bool {
    NO_HEADERS.get().copied().unwrap_or(false)
}

/// Prints `v` as JSON or YAML (tables and names are each command's own).
pub fn print_as<T: serde::Serialize>(v: &T, output: Output) -> Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(v)?),
        Output::Yaml => print!("{}", serde_saphyr::to_string(v)?),
        Output::Table | Output::Wide | Output::Name => {}
    }
    Ok(())
}

/// A table being built: a header and rows of cells.
pub struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles; a title starting with `>` is right-aligned (the `>`
    /// is not shown).
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header
                .iter()
                .map(|h| h.trim_start_matches('>').to_string())
                .collect(),
            right: header.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra ones dropped).
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The lines, the header first when `headers` (trailing blanks trimmed).
    pub fn lines(&self, headers: bool) -> Vec<String> {
        let mut t = comfy_table::Table::new();
        t.load_style(NOTHING);
        if headers {
            t.set_header(self.header.clone());
        }
        for r in &self.rows {
            t.add_row(r.clone());
        }
        if self.rows.is_empty() && !headers {
            return Vec::new();
        }
        let last = self.header.len().saturating_sub(1);
        for (i, col) in t.column_iter_mut().enumerate() {
            col.set_padding((0, if i == last { 0 } else { 3 }));
            if self.right.get(i).copied().unwrap_or(false) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        t.lines().map(|l| l.trim_end().to_string()).collect()
    }

    /// The whole table as text, honouring `--no-headers`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for l in self.lines(!no_headers()) {
            s.push_str(&l);
            s.push('\n');
        }
        s
    }

    /// Prints the table, honouring `--no-headers`.
    pub fn print(&self) {
        print!("{}", self.render());
    }

    /// The line `row` would take in this table (with its rows, so that columns line up with
    /// what was printed before and only grow): for `get -w`.
    pub fn line_for(&self, row: Vec<String>) -> String {
        let mut t = Table {
            header: self.header.clone(),
            right: self.right.clone(),
            rows: self.rows.clone(),
        };
        t.row(row);
        t.lines(true).pop().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut t = Table::new(&["ID", "NAME", ">AGE"]);
        t.row(vec!["a".into(), "a-rather-long-name".into(), "5s".into()]);
        t.row(vec!["bbbbbb".into(), "x".into(), "12m".into()]);
        let lines = t.lines(true);
        assert_eq!(
            lines,
            vec![
                "ID       NAME                 AGE",
                "a        a-rather-long-name    5s",
                "bbbbbb   x                    12m",
            ]
        );
        assert_eq!(t.lines(false).len(), 2);
        // A later, wider row widens its column.
        let l = t.line_for(vec![
            "c".into(),
            "a-name-longer-than-the-rest".into(),
            "1s".into(),
        ]);
        assert_eq!(l, "c        a-name-longer-than-the-rest    1s");
    }

    #[test]
    fn an_empty_table_without_headers_prints_nothing() {
        let t = Table::new(&["ID"]);
        assert!(t.lines(false).is_empty());
        assert_eq!(t.lines(true), vec!["ID"]);
    }
}
