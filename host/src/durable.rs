//! A node's durable state on disk: one file per node, replaced atomically.
//!
//! The write-ahead rule of the node contract says a handler's changed
//! durable state reaches the disk before any of its sends leave. Here that
//! is: encode, write a temporary file, fsync it, rename it over the state
//! file, fsync the directory. A crash at any point leaves either the old or
//! the new state, never a mix.
//!
//! The file is a small envelope around the postcard encoding: a magic, a
//! format version, the payload's length and its checksum. A file that is
//! truncated or corrupt stops the node at start with a message naming it,
//! and is left as it is (never overwritten), so the last good copy is
//! whatever the operator kept.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The state file's name inside a node's data directory.
pub const STATE_FILE: &str = "state.bin";
const MAGIC: &[u8; 4] = b"CPST";
/// The state format this build writes and reads. Bumped when what the
/// state means changes, even if it still decodes:
/// - 1: the first.
/// - 2: the store keeps a copy of each unfinished idempotency-ledger entry
///   under `/idem-open/`, and the completer finds abandoned keys by those
///   copies alone. A store of format 1 has no copies, so a key it left
///   unfinished would never be completed.
const VERSION: u32 = 2;
const HEADER_LEN: usize = 4 + 4 + 8 + 8;

/// What a node keeps across restarts: its boot counter and its durable
/// state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Persisted<D> {
    /// Starts of this node so far, minus one (0 on the first).
    pub boot: u32,
    /// The node's durable state.
    pub durable: D,
}

/// Why a state file could not be used.
#[derive(Debug)]
pub enum StateError {
    /// Reading or writing failed.
    Io(PathBuf, io::Error),
    /// The file is there but is not a whole, valid state file.
    Corrupt(PathBuf, String),
    /// A whole state file, of a format this build does not read.
    Incompatible(PathBuf, u32),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Io(path, error) => write!(f, "{}: {error}", path.display()),
            StateError::Corrupt(path, why) => write!(
                f,
                "{}: the state file is corrupt ({why}); it was left untouched: \
                 restore a good copy or remove the node's data directory to start it empty",
                path.display()
            ),
            StateError::Incompatible(path, found) => write!(
                f,
                "{}: state format {found}, written by {}; this build reads format \
                 {VERSION} only (see the format notes in host/src/durable.rs); the file was \
                 left untouched: remove the node's data directory to start it empty, or run \
                 the build that wrote it",
                path.display(),
                if *found < VERSION {
                    "an older build"
                } else {
                    "a newer build (or its header is damaged)"
                }
            ),
        }
    }
}

impl std::error::Error for StateError {}

/// One node's state file.
#[derive(Clone, Debug)]
pub struct StateFile {
    dir: PathBuf,
    path: PathBuf,
}

impl StateFile {
    /// The state file of the node whose data directory is `dir` (created if
    /// missing).
    pub fn new(dir: &Path) -> Result<Self, StateError> {
        fs::create_dir_all(dir).map_err(|e| StateError::Io(dir.to_path_buf(), e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            path: dir.join(STATE_FILE),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored state, or `None` when the node never persisted any.
    pub fn load<D: serde::de::DeserializeOwned>(&self) -> Result<Option<Persisted<D>>, StateError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StateError::Io(self.path.clone(), error)),
        };
        let corrupt = |why: String| StateError::Corrupt(self.path.clone(), why);
        if bytes.len() < HEADER_LEN {
            return Err(corrupt(format!(
                "{} bytes, shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            )));
        }
        if &bytes[..4] != MAGIC {
            return Err(corrupt("not a controlplane state file (bad magic)".into()));
        }
        let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        if version == 0 {
            // No build writes format 0: the header is damaged (the
            // checksum covers only the payload).
            return Err(corrupt("format version 0, which no build writes".into()));
        }
        if version != VERSION {
            return Err(StateError::Incompatible(self.path.clone(), version));
        }
        let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let sum = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        let payload = &bytes[HEADER_LEN..];
        if payload.len() as u64 != len {
            return Err(corrupt(format!(
                "truncated: the header promises {len} bytes of state, the file holds {}",
                payload.len()
            )));
        }
        if node::stable_hash(&payload) != sum {
            return Err(corrupt("checksum mismatch".into()));
        }
        postcard::from_bytes(payload)
            .map(Some)
            .map_err(|e| corrupt(format!("undecodable: {e}")))
    }

    /// Replaces the stored state: temporary file, fsync, rename, directory
    /// fsync. Returns once the new state is durable.
    pub fn store<D: Serialize>(&self, state: &Persisted<D>) -> Result<(), StateError> {
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |e| StateError::Io(path, e)
        };
        let payload = postcard::to_stdvec(state)
            .map_err(|e| StateError::Corrupt(self.path.clone(), format!("unencodable: {e}")))?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&node::stable_hash(&payload.as_slice()).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let temporary = self.dir.join(format!("{STATE_FILE}.tmp"));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)
            .map_err(io_error(&temporary))?;
        file.write_all(&bytes).map_err(io_error(&temporary))?;
        file.sync_all().map_err(io_error(&temporary))?;
        drop(file);
        fs::rename(&temporary, &self.path).map_err(io_error(&self.path))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(&self.dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cp-host-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_stored_state_loads_back_and_a_missing_one_is_none() {
        let dir = scratch("roundtrip");
        let file = StateFile::new(&dir).unwrap();
        assert!(file.load::<Vec<u32>>().unwrap().is_none());
        let state = Persisted {
            boot: 3,
            durable: vec![1u32, 2, 3],
        };
        file.store(&state).unwrap();
        let back: Persisted<Vec<u32>> = file.load().unwrap().unwrap();
        assert_eq!((back.boot, back.durable), (3, vec![1, 2, 3]));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_truncated_or_flipped_file_is_refused_naming_it_and_left_as_it_was() {
        let dir = scratch("corrupt");
        let file = StateFile::new(&dir).unwrap();
        let state = Persisted {
            boot: 1,
            durable: vec![7u64; 100],
        };
        file.store(&state).unwrap();
        let good = fs::read(file.path()).unwrap();

        fs::write(file.path(), &good[..good.len() - 5]).unwrap();
        let error = file.load::<Vec<u64>>().unwrap_err().to_string();
        assert!(
            error.contains("state.bin") && error.contains("truncated"),
            "{error}"
        );

        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        fs::write(file.path(), &flipped).unwrap();
        let error = file.load::<Vec<u64>>().unwrap_err().to_string();
        assert!(error.contains("checksum"), "{error}");
        assert_eq!(fs::read(file.path()).unwrap(), flipped, "left untouched");

        fs::write(file.path(), b"CP").unwrap();
        assert!(
            file.load::<Vec<u64>>()
                .unwrap_err()
                .to_string()
                .contains("header")
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_state_file_of_another_format_is_refused_naming_it_and_left_as_it_was() {
        let dir = scratch("format");
        let file = StateFile::new(&dir).unwrap();
        let state = Persisted {
            boot: 1,
            durable: vec![7u64; 3],
        };
        file.store(&state).unwrap();
        let good = fs::read(file.path()).unwrap();
        for (version, writer) in [(VERSION - 1, "an older"), (VERSION + 1, "a newer")] {
            let mut other = good.clone();
            other[4..8].copy_from_slice(&version.to_le_bytes());
            fs::write(file.path(), &other).unwrap();
            let error = file.load::<Vec<u64>>().unwrap_err();
            assert!(matches!(error, StateError::Incompatible(_, v) if v == version));
            let message = error.to_string();
            assert!(
                message.contains("state.bin")
                    && message.contains(&format!(
                        "state format {version}, written by {writer} build"
                    ))
                    && message.contains("remove the node's data directory"),
                "{message}"
            );
            assert_eq!(fs::read(file.path()).unwrap(), other, "left untouched");
        }
        let mut zero = good.clone();
        zero[4..8].copy_from_slice(&0u32.to_le_bytes());
        fs::write(file.path(), &zero).unwrap();
        let error = file.load::<Vec<u64>>().unwrap_err();
        assert!(
            matches!(&error, StateError::Corrupt(_, why) if why.contains("version 0")),
            "{error}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
