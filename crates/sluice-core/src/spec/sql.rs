//! Splitting SQL text into statements, as Spark SQL reads it: a `;` ends a statement unless it
//! is inside a string (`'...'`, `"..."`, with `\` escapes and doubled quotes), a quoted
//! identifier (`` `...` ``), a line comment (`-- ...`) or a bracketed comment (`/* ... */`,
//! nested as Spark nests them). Statements with nothing but white space and comments are
//! dropped; the others are kept as written (comments inside included), trimmed.

/// Why SQL text could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlSplitError {
    /// A string, quoted identifier or bracketed comment is never closed.
    #[error("{what} opened on line {line} is never closed")]
    Unterminated {
        /// What was left open ("a string", "a quoted identifier", "a comment").
        what: &'static str,
        /// The line (from 1) it was opened on.
        line: usize,
    },
}

/// The statements of `sql`, in order.
pub fn split_statements(sql: &str) -> Result<Vec<String>, SqlSplitError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    // Whether the current statement has anything but white space and comments.
    let mut has_code = false;
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\'' | '"' | '`' => {
                let (what, escapes) = match c {
                    '`' => ("a quoted identifier", false),
                    _ => ("a string", true),
                };
                let opened = line;
                current.push(c);
                i += 1;
                loop {
                    let Some(&d) = chars.get(i) else {
                        return Err(SqlSplitError::Unterminated { what, line: opened });
                    };
                    current.push(d);
                    i += 1;
                    if d == '\n' {
                        line += 1;
                    }
                    if escapes && d == '\\' {
                        if let Some(&e) = chars.get(i) {
                            current.push(e);
                            if e == '\n' {
                                line += 1;
                            }
                            i += 1;
                        }
                        continue;
                    }
                    if d == c {
                        // A doubled quote is the quote itself.
                        if chars.get(i) == Some(&c) {
                            current.push(c);
                            i += 1;
                            continue;
                        }
                        break;
                    }
                }
                has_code = true;
            }
            '-' if next == Some('-') => {
                while i < chars.len() && chars[i] != '\n' {
                    current.push(chars[i]);
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let opened = line;
                let mut depth = 0usize;
                loop {
                    match (chars.get(i), chars.get(i + 1)) {
                        (Some('/'), Some('*')) => {
                            depth += 1;
                            current.push_str("/*");
                            i += 2;
                        }
                        (Some('*'), Some('/')) => {
                            depth -= 1;
                            current.push_str("*/");
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        (Some(&d), _) => {
                            if d == '\n' {
                                line += 1;
                            }
                            current.push(d);
                            i += 1;
                        }
                        (None, _) => {
                            return Err(SqlSplitError::Unterminated {
                                what: "a comment",
                                line: opened,
                            });
                        }
                    }
                }
            }
            ';' => {
                if has_code {
                    out.push(current.trim().to_string());
                }
                current.clear();
                has_code = false;
                i += 1;
            }
            _ => {
                if c == '\n' {
                    line += 1;
                }
                if !c.is_whitespace() {
                    has_code = true;
                }
                current.push(c);
                i += 1;
            }
        }
    }
    if has_code {
        out.push(current.trim().to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        split_statements(s).unwrap()
    }

    #[test]
    fn statements_are_split_at_semicolons_outside_quotes_and_comments() {
        let cases: [(&str, &[&str]); 9] = [
            ("select 1; select 2", &["select 1", "select 2"]),
            ("select 1;\n\n;  ; select 2;\n", &["select 1", "select 2"]),
            ("select 'a;b'; select 2", &["select 'a;b'", "select 2"]),
            ("select \"x;y\" ; select 2", &["select \"x;y\"", "select 2"]),
            ("select `we;ird` from t", &["select `we;ird` from t"]),
            ("select 'it''s; ok'", &["select 'it''s; ok'"]),
            (
                "select 'it\\'s; ok'; select 3",
                &["select 'it\\'s; ok'", "select 3"],
            ),
            (
                "-- a comment; not a split\nselect 1; -- trailing; comment\n",
                &["-- a comment; not a split\nselect 1"],
            ),
            (
                "/* block; /* nested; */ still; */ select 1; select /* ; */ 2",
                &[
                    "/* block; /* nested; */ still; */ select 1",
                    "select /* ; */ 2",
                ],
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(split(sql), want.to_vec(), "{sql:?}");
        }
    }

    #[test]
    fn comment_only_text_has_no_statements() {
        assert!(split("-- nothing here;\n/* nor; here */ ;;\n").is_empty());
        assert!(split("").is_empty());
    }

    #[test]
    fn an_unclosed_string_or_comment_is_an_error_naming_its_line() {
        assert_eq!(
            split_statements("select 1;\nselect 'oops;\nselect 2"),
            Err(SqlSplitError::Unterminated {
                what: "a string",
                line: 2
            })
        );
        assert_eq!(
            split_statements("select 1 /* never\n closed"),
            Err(SqlSplitError::Unterminated {
                what: "a comment",
                line: 1
            })
        );
        assert_eq!(
            split_statements("select `x from t"),
            Err(SqlSplitError::Unterminated {
                what: "a quoted identifier",
                line: 1
            })
        );
    }

    #[test]
    fn a_dash_or_slash_alone_is_code() {
        assert_eq!(
            split("select 4 - 1 / 2; select 5"),
            ["select 4 - 1 / 2", "select 5"]
        );
    }
}
