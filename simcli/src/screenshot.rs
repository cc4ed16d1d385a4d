//! Screenshots of a timeline page with headless Chromium, for the lessons'
//! pictures. Only the pictures depend on the browser: the pages and the
//! timelines' HTML are generated (and tested) without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dst::error::Error;

/// The browser on the PATH: `chromium` or `chromium-browser`.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        ["chromium", "chromium-browser"]
            .iter()
            .map(|name| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Loads `html` in headless Chromium at 1600x900 and writes its picture to
/// `png`. A missing browser is bad input that says how to install it.
pub fn take(html: &Path, png: &Path) -> Result<(), Error> {
    let Some(browser) = chromium() else {
        return Err(Error::bad_input(
            html.display().to_string(),
            "taking the screenshot needs `chromium` (or `chromium-browser`) on the PATH: \
             install it (`apt-get install chromium`) or pass --no-screenshots",
        ));
    };
    let html = std::path::absolute(html)
        .map_err(|error| Error::io(html, format!("cannot resolve: {error}")))?;
    let png_abs = std::path::absolute(png)
        .map_err(|error| Error::io(png, format!("cannot resolve: {error}")))?;
    let profile = std::env::temp_dir().join(format!("controlplane-shot-{}", std::process::id()));
    let status = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1600,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png_abs.display()))
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(&profile);
    match status {
        Ok(status) if status.success() && png_abs.is_file() => Ok(()),
        Ok(status) => Err(Error::io(
            png,
            format!(
                "{} exited with {status} without a screenshot",
                browser.display()
            ),
        )),
        Err(error) => Err(Error::io(
            png,
            format!("cannot run {}: {error}", browser.display()),
        )),
    }
}
