//! Collects every problem found while checking a config, so all are reported at once.

use std::fmt;

/// A list of `field: message` problems.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, field: impl fmt::Display, message: impl fmt::Display) {
        self.0.push(format!("{field}: {message}"));
    }

    /// Records a problem when `ok` is false.
    pub fn check(&mut self, ok: bool, field: impl fmt::Display, message: impl fmt::Display) {
        if !ok {
            self.push(field, message);
        }
    }

    pub fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The report for a config file: `FILE: N problem(s):` and one line each.
    pub fn report(&self, file: &std::path::Path) -> String {
        format!("{}: {} problem(s):\n{self}", file.display(), self.len())
    }

    /// `Ok(value)` when no problem was recorded.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
