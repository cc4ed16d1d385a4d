//! Why a call into the framework failed, as a type: bad input, results that
//! could not be written or read, or a panic of the system under test.
//!
//! The command line picks its exit code from the variant (2, 1 and 5), so
//! no caller has to recognise an error by the words it starts with.

use std::fmt;
use std::path::PathBuf;

/// An error of the framework's entry points (scenario loading, a run, a
/// sweep, shrinking, artifacts, the zoo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A scenario, artifact or argument is invalid. Nothing ran, or what
    /// ran proves nothing; fixing the input is the way on.
    BadInput {
        /// The file (or scenario, or flag) at fault; empty when there is
        /// none to name.
        file: String,
        /// What is wrong: the key, its value and what is allowed.
        message: String,
    },
    /// Results (a results file, an artifact, a directory) could not be
    /// written or read back: the run may have been fine, its record is not.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed, e.g. `cannot write: No space left on device`.
        message: String,
    },
    /// The system under test panicked.
    Crash {
        /// The panic message, with its location.
        message: String,
        /// How many faults the panicking run applied, when the caller gave
        /// it a fault list (shrinking does).
        faults: Option<usize>,
    },
}

impl Error {
    /// Bad input in `file`: `message` names the key and what is allowed.
    pub fn bad_input(file: impl Into<String>, message: impl Into<String>) -> Error {
        Error::BadInput {
            file: file.into(),
            message: message.into(),
        }
    }

    /// `path` could not be written or read: `message` says which and why.
    pub fn io(path: impl Into<PathBuf>, message: impl fmt::Display) -> Error {
        Error::Io {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// The system under test panicked with `message`.
    pub(crate) fn crash(message: impl Into<String>) -> Error {
        Error::Crash {
            message: message.into(),
            faults: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadInput { file, message } if file.is_empty() => f.write_str(message),
            Error::BadInput { file, message } => write!(f, "{file}: {message}"),
            Error::Io { path, message } => write!(f, "{}: {message}", path.display()),
            Error::Crash {
                message,
                faults: None,
            } => write!(f, "the system under test panicked: {message}"),
            Error::Crash {
                message,
                faults: Some(faults),
            } => write!(
                f,
                "the system under test panicked on a run with {faults} faults: {message}"
            ),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_names_the_file_before_the_message() {
        let error = Error::bad_input("x.toml", "network.drop_ppm = 2 is out of range");
        assert_eq!(
            error.to_string(),
            "x.toml: network.drop_ppm = 2 is out of range"
        );
        let error = Error::bad_input("", "--bug all runs the whole zoo");
        assert_eq!(error.to_string(), "--bug all runs the whole zoo");
    }

    #[test]
    fn a_crash_says_the_system_under_test_panicked_and_with_how_many_faults() {
        assert_eq!(
            Error::crash("boom").to_string(),
            "the system under test panicked: boom"
        );
        let error = Error::Crash {
            message: "boom".into(),
            faults: Some(3),
        };
        assert_eq!(
            error.to_string(),
            "the system under test panicked on a run with 3 faults: boom"
        );
    }

    #[test]
    fn an_io_error_names_the_path() {
        let error = Error::io("out/results.jsonl", "cannot write: disk full");
        assert_eq!(
            error.to_string(),
            "out/results.jsonl: cannot write: disk full"
        );
    }
}
