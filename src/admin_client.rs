//! What `chaos` and `watch` share: finding a running cluster's admin
//! endpoint and its token, and one JSON request to it.
//!
//! The endpoint is named by `--url` and `--token` (or the
//! `CONTROLPLANE_ADMIN_TOKEN` environment variable), or by `--data DIR`:
//! `serve` writes `DIR/admin.json` (readable by its owner only) with both.

// A client of a real server: real sockets and time are its job.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::remote_http::parse_base_url;

/// The file `serve` writes into its data directory: where its admin
/// endpoint is and its token.
pub const ADMIN_FILE: &str = "admin.json";

/// Exit code: the admin endpoint refused (a wrong token, a fault it will
/// not start).
pub const EXIT_REFUSED: u8 = 13;

/// How long one admin request may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a cluster's admin endpoint is, as flags.
#[derive(Args, Clone, Debug, Default)]
pub struct AdminArgs {
    /// The admin endpoint (`serve` prints it: `admin at http://...`).
    #[arg(long, value_name = "URL", global = true)]
    pub url: Option<String>,
    /// The admin token (`serve` prints it); also read from
    /// CONTROLPLANE_ADMIN_TOKEN.
    #[arg(
        long,
        env = "CONTROLPLANE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// Instead of --url and --token: the data directory of a running
    /// `serve`, whose admin.json has both.
    #[arg(long, value_name = "DIR", conflicts_with = "url", global = true)]
    pub data: Option<PathBuf>,
}

/// What `serve` writes to `DIR/admin.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminFile {
    /// The admin endpoint's base URL.
    pub url: String,
    /// Its token.
    pub token: String,
}

/// Writes `dir/name` (`admin.json` for a single process), readable by its
/// owner only.
pub fn write_admin_file(dir: &Path, name: &str, file: &AdminFile) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(&path)?;
    out.write_all(
        serde_json::to_string_pretty(file)
            .expect("serializable")
            .as_bytes(),
    )?;
    out.write_all(b"\n")
}

/// A resolved admin endpoint.
#[derive(Clone, Debug)]
pub struct Target {
    /// Base URL, without a trailing slash.
    pub url: String,
    /// Bearer token.
    pub token: String,
}

impl AdminArgs {
    /// The endpoint these flags name; the error is one line for the user.
    pub fn resolve(&self) -> Result<Target, String> {
        if let Some(dir) = &self.data {
            let path = dir.join(ADMIN_FILE);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "--data: cannot read {}: {e} (is `controlplane serve --data {}` running?)",
                    path.display(),
                    dir.display()
                )
            })?;
            let file: AdminFile = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{}: not an admin file ({e}): allowed {{\"url\": ..., \"token\": ...}}",
                    path.display()
                )
            })?;
            return Ok(Target {
                url: parse_base_url(&file.url)?,
                token: self.token.clone().unwrap_or(file.token),
            });
        }
        let url = self.url.as_deref().ok_or(
            "no admin endpoint: give --url URL and --token TOKEN (both printed by serve), or --data DIR",
        )?;
        let token = self.token.clone().ok_or(
            "no admin token: give --token TOKEN (printed by serve) or set CONTROLPLANE_ADMIN_TOKEN",
        )?;
        Ok(Target {
            url: parse_base_url(url)?,
            token,
        })
    }
}

/// Why an admin request failed.
#[derive(Debug)]
pub enum AdminError {
    /// Nothing answered at the URL.
    Unreachable(String),
    /// It answered with an error status; the message is its own.
    Refused(u16, String),
}

impl AdminError {
    /// The exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::Unreachable(_) => crate::remote_http::EXIT_UNREACHABLE,
            AdminError::Refused(..) => EXIT_REFUSED,
        }
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Unreachable(why) => write!(f, "{why}"),
            AdminError::Refused(status, message) => {
                write!(f, "the admin endpoint answered {status}: {message}")
            }
        }
    }
}

/// One request to the admin endpoint; the JSON body of a 2xx answer.
pub async fn request(
    target: &Target,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, AdminError> {
    let client = reqwest::Client::builder()
        .timeout(ADMIN_TIMEOUT)
        .build()
        .map_err(|e| AdminError::Unreachable(e.to_string()))?;
    let url = format!("{}{path}", target.url);
    let mut builder = client.request(method, &url).bearer_auth(&target.token);
    if let Some(body) = body {
        builder = builder.json(body);
    }
    let response = builder.send().await.map_err(|e| {
        let mut cause: &dyn std::error::Error = &e;
        while let Some(source) = cause.source() {
            cause = source;
        }
        AdminError::Unreachable(format!(
            "cannot reach the admin endpoint at {}: {cause}",
            target.url
        ))
    })?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| AdminError::Unreachable(format!("the answer broke off: {e}")))?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if (200..300).contains(&status) {
        Ok(value)
    } else {
        let message = value
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        Err(AdminError::Refused(status, message))
    }
}
