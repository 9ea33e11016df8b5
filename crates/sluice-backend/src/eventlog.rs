//! Reads a Spark event log from disk into [`sluice_core::usage::RunUsage`], streaming: a single
//! file (`local-1700000000000`, `app-...`, possibly `.inprogress`), or a rolling log directory
//! (`eventlog_v2_APPID/` with `events_1_APPID`, `events_2_APPID`, ... read in order). Files ending
//! in `.zstd` or `.zst` (Spark's default codec when `spark.eventLog.compress` is on) are
//! decompressed as they are read; the other codecs (lz4, lzf, snappy) are refused by name.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sluice_core::usage::{RunUsage, UsageParser};

mod shared;
#[cfg(test)]
mod tests;

pub use self::shared::{SharedEventLog, SharedLogError, SharedReadError};

/// Why an event log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// The file or directory could not be read.
    #[error("event log {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is compressed with a codec sluice does not read.
    #[error(
        "event log {path}: codec {codec:?} is not supported (set spark.eventLog.compression.codec=zstd, or spark.eventLog.compress=false)"
    )]
    Codec {
        /// The path.
        path: PathBuf,
        /// The codec, from the file name.
        codec: String,
    },
    /// A rolling log directory without any `events_N_` file.
    #[error("event log {0}: no events_N_ files in the directory")]
    Empty(PathBuf),
}

/// Reads the event log at `path` (a file or a rolling log directory).
pub fn read(path: &Path) -> Result<RunUsage, EventLogError> {
    let io = |source| EventLogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut parser = UsageParser::new();
    if path.is_dir() {
        let mut parts: Vec<(u64, PathBuf)> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let n = name
                    .strip_prefix("events_")?
                    .split('_')
                    .next()?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .collect();
        if parts.is_empty() {
            return Err(EventLogError::Empty(path.to_path_buf()));
        }
        parts.sort();
        for (_, part) in parts {
            feed(&part, &mut parser)?;
        }
    } else {
        feed(path, &mut parser)?;
    }
    Ok(parser.finish())
}

/// A zstd stream of any number of frames (Spark's zstd stream ends a frame at each flush),
/// decoded one frame after another without holding more than a frame's window in memory.
struct Frames<R: BufRead> {
    /// Between frames: the source.
    source: Option<R>,
    /// Inside a frame.
    frame: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
}

impl<R: BufRead> Frames<R> {
    fn new(source: R) -> Self {
        Frames {
            source: Some(source),
            frame: None,
        }
    }
}

impl<R: BufRead> Read for Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(frame) = &mut self.frame {
                let n = frame.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                // The frame ended: the next one, if any.
                if let Some(frame) = self.frame.take() {
                    self.source = Some(frame.into_inner());
                }
            }
            let Some(mut source) = self.source.take() else {
                return Ok(0);
            };
            if source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let frame = ruzstd::decoding::StreamingDecoder::new(source)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            self.frame = Some(frame);
        }
    }
}

fn feed(path: &Path, parser: &mut UsageParser) -> Result<(), EventLogError> {
    let io = |source| EventLogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = name.strip_suffix(".inprogress").unwrap_or(&name);
    let file = File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("zstd" | "zst") => Box::new(Frames::new(BufReader::new(file))),
        Some(codec @ ("lz4" | "lzf" | "snappy")) => {
            return Err(EventLogError::Codec {
                path: path.to_path_buf(),
                codec: codec.into(),
            });
        }
        _ => Box::new(file),
    };
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A decoder error mid-file (a truncated frame) ends the read like a truncated line.
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => parser.line(&String::from_utf8_lossy(&line)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => {
                tracing::debug!("event log {}: read ends: {e}", path.display());
                return Ok(());
            }
        }
    }
}
