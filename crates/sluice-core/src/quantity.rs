//! CPU and memory quantities as Spark and Kubernetes write them.
//!
//! Memory follows Spark's `JavaUtils.byteStringAs` for "MiB" settings (`spark.driver.memory`,
//! `spark.executor.memoryOverhead`, ...): a bare number is MiB, suffixes `k`/`kb`, `m`/`mb`,
//! `g`/`gb`, `t`/`tb`, `p`/`pb` are powers of 1024 and case does not matter; so "512m" is 512 MiB.
//! Kubernetes' binary suffixes `Ki`, `Mi`, `Gi`, `Ti` are accepted too. Fractions are refused, as
//! Spark refuses them. CPU is cores ("2", "0.5") or Kubernetes millicores ("500m").

use std::fmt;

/// Why a quantity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text is empty.
    #[error("is empty")]
    Empty,
    /// The number part is not a whole, non-negative number.
    #[error("is not a whole number with an optional unit (like 512m, 4g, 2048)")]
    BadNumber,
    /// The unit is not one sluice knows.
    #[error("has unknown unit {0:?} (expected k, m, g, t, p with optional b, or Ki, Mi, Gi, Ti)")]
    BadUnit(String),
    /// The value must be above zero.
    #[error("must be greater than zero")]
    Zero,
    /// The value is too large to represent.
    #[error("is too large")]
    TooLarge,
    /// A CPU quantity that is neither cores nor millicores.
    #[error("is not a CPU quantity (expected cores like 2 or 0.5, or millicores like 500m)")]
    BadCpu,
}

/// Parses a memory size into MiB, rounding a sub-MiB remainder up.
pub fn parse_mem_mib(text: &str) -> Result<u64, QuantityError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(QuantityError::Empty);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(QuantityError::BadNumber);
    }
    let n: u128 = num.parse().map_err(|_| QuantityError::TooLarge)?;
    // Bytes per unit.
    let per: u128 = match unit.trim() {
        "" => 1 << 20,
        u => match u.to_ascii_lowercase().as_str() {
            "b" => 1,
            "k" | "kb" | "ki" => 1 << 10,
            "m" | "mb" | "mi" => 1 << 20,
            "g" | "gb" | "gi" => 1 << 30,
            "t" | "tb" | "ti" => 1 << 40,
            "p" | "pb" => 1 << 50,
            _ if u.starts_with('.') => return Err(QuantityError::BadNumber),
            _ => return Err(QuantityError::BadUnit(u.to_string())),
        },
    };
    let bytes = n.checked_mul(per).ok_or(QuantityError::TooLarge)?;
    let mib = bytes.div_ceil(1 << 20);
    let mib = u64::try_from(mib).map_err(|_| QuantityError::TooLarge)?;
    if mib == 0 {
        return Err(QuantityError::Zero);
    }
    Ok(mib)
}

/// Parses a CPU quantity into millicores: "2" and "0.5" are cores, "500m" is millicores.
pub fn parse_cpu_milli(text: &str) -> Result<u64, QuantityError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(QuantityError::Empty);
    }
    let milli = if let Some(m) = t.strip_suffix('m') {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_digit()) {
            return Err(QuantityError::BadCpu);
        }
        m.parse::<u64>().map_err(|_| QuantityError::TooLarge)?
    } else {
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty()) || !digits_ok(whole) || !digits_ok(frac) {
            return Err(QuantityError::BadCpu);
        }
        if frac.len() > 3 {
            // Kubernetes' smallest CPU unit is 1m.
            return Err(QuantityError::BadCpu);
        }
        let w: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| QuantityError::TooLarge)?
        };
        let f: u64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<3}")
                .parse()
                .map_err(|_| QuantityError::BadCpu)?
        };
        w.checked_mul(1000)
            .and_then(|v| v.checked_add(f))
            .ok_or(QuantityError::TooLarge)?
    };
    if milli == 0 {
        return Err(QuantityError::Zero);
    }
    Ok(milli)
}

/// Formats millicores as "2 cores", "1 core" or "500m".
pub fn format_cpu(milli: u64) -> String {
    if milli.is_multiple_of(1000) {
        let c = milli / 1000;
        if c == 1 {
            "1 core".to_string()
        } else {
            format!("{c} cores")
        }
    } else {
        format!("{} cores", format_cpu_plain(milli))
    }
}

/// Formats millicores as a plain number of cores: "2", "0.5", "1.25".
pub fn format_cpu_plain(milli: u64) -> String {
    if milli.is_multiple_of(1000) {
        format!("{}", milli / 1000)
    } else {
        let s = format!("{}.{:03}", milli / 1000, milli % 1000);
        s.trim_end_matches('0').to_string()
    }
}

/// Formats MiB as "512 MiB" or "1.4 GiB".
pub fn format_mem(mib: u64) -> String {
    if mib < 1024 {
        format!("{mib} MiB")
    } else if mib.is_multiple_of(1024) {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{:.1} GiB", mib as f64 / 1024.0)
    }
}

/// A memory size in MiB that prints as Spark writes it ("1408m").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparkMem(pub u64);

impl fmt::Display for SparkMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}m", self.0)
    }
}

#[cfg(test)]
mod tests;
