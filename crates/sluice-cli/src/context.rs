//! Contexts, like kubeconfig's: named profiles of server URL, token and CA in a config file,
//! one of them current. `--context NAME` (or `SLUICE_CONTEXT`) picks one for a command;
//! `sluice config use-context|get-contexts|current-context|set-context|delete-context|view`
//! manage them.
//!
//! The file is `$SLUICE_CONFIG`, else `$XDG_CONFIG_HOME/sluice/config.yaml`, else
//! `~/.config/sluice/config.yaml`:
//!
//! ```yaml
//! current-context: prod
//! contexts:
//!   - name: prod
//!     server: https://sluice.example.com:7467
//!     token-file: /home/me/.config/sluice/prod.token   # must be 0600
//!     ca-file: /etc/sluice/ca.pem
//! ```
//!
//! What wins: flags, then environment variables (`SLUICE_SERVER`, `SLUICE_TOKEN`,
//! `SLUICE_TOKEN_FILE`, `SLUICE_CA_FILE`), then the context, then the defaults. A token file
//! (or a config file holding a `token:`) that others may read is refused. Tokens are never
//! printed.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Subcommand;
use serde::{Deserialize, Serialize};

use crate::output::Table;

/// The config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConfigFile {
    /// The context used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    /// The contexts.
    #[serde(default)]
    pub contexts: Vec<Ctx>,
}

/// One context.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Ctx {
    /// Its name.
    pub name: String,
    /// The server's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// A file holding the token (first line); must not be readable by others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// The token itself (then the config file must not be readable by others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// CA certificate(s) to trust for an https:// server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Where the config file is.
pub fn config_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(x).join("sluice/config.yaml"));
    }
    let home = std::env::var_os("HOME")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| anyhow!("no SLUICE_CONFIG and no HOME: cannot find the config file"))?;
    Ok(PathBuf::from(home).join(".config/sluice/config.yaml"))
}

/// The config file's contents (empty when there is no file).
pub fn load(path: &Path) -> Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    let cfg: ConfigFile = serde_saphyr::from_str(&text)
        .with_context(|| format!("the config file {}", path.display()))?;
    if cfg.contexts.iter().any(|c| c.token.is_some()) {
        crate::access::check_private(path, "the config file")?;
    }
    Ok(cfg)
}

/// Writes the config file (0600, through a temporary file and a rename).
fn save(path: &Path, cfg: &ConfigFile) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_saphyr::to_string(cfg)?;
    let tmp = path.with_extension("yaml.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The context a command uses: `name` (from `--context`), else the current one, else none.
pub fn select(name: Option<&str>) -> Result<Option<Ctx>> {
    let path = config_path()?;
    let cfg = load(&path)?;
    let Some(want) = name.or(cfg.current_context.as_deref()) else {
        return Ok(None);
    };
    match cfg.contexts.iter().find(|c| c.name == want) {
        Some(c) => Ok(Some(c.clone())),
        None => bail!(
            "no context {want:?} in {} (contexts: {})",
            path.display(),
            names(&cfg)
        ),
    }
}

fn names(cfg: &ConfigFile) -> String {
    if cfg.contexts.is_empty() {
        return "none".into();
    }
    cfg.contexts
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The token of a context: its `token`, else its `token-file` (which must be private).
pub fn context_token(c: &Ctx) -> Result<Option<String>> {
    if let Some(t) = c.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_string()));
    }
    if let Some(f) = &c.token_file {
        crate::access::check_private(f, &format!("the token file of context {:?}", c.name))?;
        return crate::access::read_token_file(f).map(Some);
    }
    Ok(None)
}

/// `sluice config ...`.
#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Lists the contexts (`*` marks the current one; tokens are never shown).
    GetContexts,
    /// Prints the current context's name.
    CurrentContext,
    /// Makes NAME the current context.
    UseContext {
        /// The context.
        name: String,
    },
    /// Creates or changes a context (only the options given change).
    SetContext {
        /// The context.
        name: String,
        /// The server's URL.
        #[arg(long)]
        server: Option<String>,
        /// A file holding the token (it must be mode 0600).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// CA certificate(s) (PEM) for an https:// server.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Make it the current context too.
        #[arg(long)]
        current: bool,
    },
    /// Deletes a context.
    DeleteContext {
        /// The context.
        name: String,
    },
    /// Prints the config file (tokens replaced by REDACTED).
    View,
}

/// Runs `sluice config ...`.
pub fn run(cmd: ConfigCmd) -> Result<i32> {
    let path = config_path()?;
    let mut cfg = load(&path)?;
    match cmd {
        ConfigCmd::GetContexts => {
            let mut t = Table::new(&["CURRENT", "NAME", "SERVER", "TOKEN", "CA FILE"]);
            for c in &cfg.contexts {
                let token = match (&c.token, &c.token_file) {
                    (Some(_), _) => "(in the config file)".to_string(),
                    (None, Some(f)) => f.display().to_string(),
                    (None, None) => "-".into(),
                };
                t.row(vec![
                    if cfg.current_context.as_deref() == Some(c.name.as_str()) {
                        "*".into()
                    } else {
                        String::new()
                    },
                    c.name.clone(),
                    c.server.clone().unwrap_or_else(|| "-".into()),
                    token,
                    c.ca_file
                        .as_ref()
                        .map(|f| f.display().to_string())
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            t.print();
        }
        ConfigCmd::CurrentContext => match &cfg.current_context {
            Some(c) => println!("{c}"),
            None => bail!("no current context in {}", path.display()),
        },
        ConfigCmd::UseContext { name } => {
            if !cfg.contexts.iter().any(|c| c.name == name) {
                bail!(
                    "no context {name:?} in {} (contexts: {})",
                    path.display(),
                    names(&cfg)
                );
            }
            cfg.current_context = Some(name.clone());
            save(&path, &cfg)?;
            println!("switched to context {name:?}");
        }
        ConfigCmd::SetContext {
            name,
            server,
            token_file,
            ca_file,
            current,
        } => {
            if name.trim().is_empty() {
                bail!("a context needs a name");
            }
            if let Some(f) = &token_file {
                crate::access::check_private(f, "the token file")?;
            }
            let created = !cfg.contexts.iter().any(|c| c.name == name);
            if created {
                cfg.contexts.push(Ctx {
                    name: name.clone(),
                    ..Default::default()
                });
            }
            if let Some(c) = cfg.contexts.iter_mut().find(|c| c.name == name) {
                if server.is_some() {
                    c.server = server;
                }
                if token_file.is_some() {
                    c.token_file = token_file;
                    c.token = None;
                }
                if ca_file.is_some() {
                    c.ca_file = ca_file;
                }
            }
            if current {
                cfg.current_context = Some(name.clone());
            }
            save(&path, &cfg)?;
            println!(
                "context {name:?} {}",
                if created { "created" } else { "modified" }
            );
        }
        ConfigCmd::DeleteContext { name } => {
            let before = cfg.contexts.len();
            cfg.contexts.retain(|c| c.name != name);
            if cfg.contexts.len() == before {
                bail!("no context {name:?} in {}", path.display());
            }
            if cfg.current_context.as_deref() == Some(name.as_str()) {
                cfg.current_context = None;
            }
            save(&path, &cfg)?;
            println!("deleted context {name:?}");
        }
        ConfigCmd::View => {
            let mut shown = cfg.clone();
            for c in &mut shown.contexts {
                if c.token.is_some() {
                    c.token = Some("REDACTED".into());
                }
            }
            print!("{}", serde_saphyr::to_string(&shown)?);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_token_file_open_to_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "sluice_x\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = Ctx {
            name: "prod".into(),
            token_file: Some(f.clone()),
            ..Default::default()
        };
        let e = context_token(&c).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && e.contains("644"), "{e}");
        assert!(!e.contains("sluice_x"), "the token is never shown: {e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(context_token(&c).unwrap().as_deref(), Some("sluice_x"));
    }

    #[test]
    fn the_file_round_trips_in_kubeconfig_style() {
        let text = "current-context: a\ncontexts:\n  - name: a\n    server: http://x:1\n    token-file: /t\n    ca-file: /ca.pem\n";
        let cfg: ConfigFile = serde_saphyr::from_str(text).unwrap();
        assert_eq!(cfg.current_context.as_deref(), Some("a"));
        assert_eq!(cfg.contexts[0].token_file.as_deref(), Some(Path::new("/t")));
        let back: ConfigFile =
            serde_saphyr::from_str(&serde_saphyr::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        // A misspelt key is an error, not ignored.
        assert!(
            serde_saphyr::from_str::<ConfigFile>("contexts:\n  - name: a\n    sever: x\n").is_err()
        );
    }
}
