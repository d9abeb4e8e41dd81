//! Configuration problems: every one names the dotted key that is wrong and says why.

use std::fmt;

/// One configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key, `listeners[orders].page_size`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// All problems found in one configuration.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Problems given as `(key, message)` pairs, the form each section's `problems()` returns.
    pub fn from_problems(problems: Vec<(String, String)>) -> ConfigErrors {
        ConfigErrors(
            problems
                .into_iter()
                .map(|(key, message)| ConfigError { key, message })
                .collect(),
        )
    }

    /// The same problems with every key put under `prefix` (`server`, `listeners[orders]`).
    pub fn within(self, prefix: &str) -> ConfigErrors {
        ConfigErrors(
            self.0
                .into_iter()
                .map(|error| ConfigError {
                    key: format!("{prefix}.{}", error.key),
                    message: error.message,
                })
                .collect(),
        )
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// One problem as a whole answer: for errors that stop reading the configuration at once.
pub fn single(key: impl Into<String>, message: impl Into<String>) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        key: key.into(),
        message: message.into(),
    }])
}
