//! The crate's one error type. Every message names what was being parsed or resolved and
//! quotes the part of the input that is wrong, so a user can fix it from one line.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A duration such as `7d` or `1h30m` that does not parse.
    #[error("duration {input:?}: {problem}")]
    Duration { input: String, problem: String },

    /// A time expression (`2h-ago`, `yesterday 18:00`, `@-1`...) that does not parse.
    #[error("time {input:?}: {problem}")]
    Time { input: String, problem: String },

    /// A time expression that parses but picks no snapshot.
    #[error("time {expr:?}: {problem}")]
    Resolve { expr: String, problem: String },

    /// A schedule (cron line or `@daily`-style shorthand) that does not parse.
    #[error("schedule {input:?}: {problem}")]
    Schedule { input: String, problem: String },

    /// Retention rules (`hourly=24 daily=7`, `keep-last 5`) that do not parse.
    #[error("retention {input:?}: {problem}")]
    Retention { input: String, problem: String },

    /// A zrepl-style grid (`1x1h(keep=all) | 24x1h`) that does not parse.
    #[error("grid {input:?}: {problem}")]
    Grid { input: String, problem: String },
}

impl Error {
    pub(crate) fn duration(input: &str, problem: impl Into<String>) -> Error {
        Error::Duration {
            input: input.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn time(input: &str, problem: impl Into<String>) -> Error {
        Error::Time {
            input: input.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn resolve(expr: impl ToString, problem: impl Into<String>) -> Error {
        Error::Resolve {
            expr: expr.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn schedule(input: &str, problem: impl Into<String>) -> Error {
        Error::Schedule {
            input: input.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn retention(input: &str, problem: impl Into<String>) -> Error {
        Error::Retention {
            input: input.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn grid(input: &str, problem: impl Into<String>) -> Error {
        Error::Grid {
            input: input.to_string(),
            problem: problem.into(),
        }
    }
}
