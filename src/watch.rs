//! `controlplane watch`: a live terminal view of a running cluster. It
//! asks the admin endpoint for `GET /admin/status` every `--interval`,
//! judges the history in the data directory with the checkers every
//! `--check-every` (the admin endpoint is loopback only, so the histories
//! are on this machine), and draws both with ratatui ([`view`]).
//!
//! The terminal is put back (raw mode off, the alternate screen left) on
//! every way out: a key, a signal, an error (a guard's drop) and a panic
//! (ratatui's hook). `--once` draws the same frame into a test backend
//! and prints it as plain text, for scripts and tests.

// A client of a real server, on a real terminal: real time is its job.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

pub mod view;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;

use crate::admin_client::{AdminArgs, AdminError, Target, request};
use crate::remote_http::{EXIT_UNREACHABLE, parse_duration};
use view::{Board, Link, Screen, Status, Verdicts};

/// Exit codes of `watch`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  quit with q, Esc or Ctrl-C (or --once printed its frame)
  1  the terminal could not be set up or drawn on
  2  bad input: a flag, or no admin endpoint named
  11 the admin endpoint could not be reached at start (later, the screen says so and watch keeps trying)
  13 the admin endpoint refused (a wrong token)";

/// The shortest refresh interval accepted.
const INTERVAL_MIN: Duration = Duration::from_millis(100);

/// Where and how to watch.
#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// How often to ask the cluster for its status (e.g. 500ms, 1s, 2s).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
    /// How often to judge the history again for the verdicts; each check
    /// reads every node's whole history, so not too often.
    #[arg(long, default_value = "5s", value_parser = parse_interval, value_name = "DURATION")]
    check_every: Duration,
    /// Print one frame as plain text (no colours, no terminal control)
    /// and exit: for scripts and tests.
    #[arg(long)]
    once: bool,
    /// With --once: the frame's width in columns.
    #[arg(long, default_value_t = 100, requires = "once",
          value_parser = clap::value_parser!(u16).range(40..=1000))]
    width: u16,
    /// With --once: the frame's height in rows.
    #[arg(long, default_value_t = 40, requires = "once",
          value_parser = clap::value_parser!(u16).range(12..=1000))]
    height: u16,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < INTERVAL_MIN {
        return Err(format!("`{text}`: at least 100ms"));
    }
    Ok(duration)
}

/// Why a status could not be had.
#[derive(Debug)]
enum FetchError {
    Admin(AdminError),
    /// It answered 2xx, but not with a status this watch understands.
    NotAStatus(String),
}

impl FetchError {
    fn exit_code(&self) -> u8 {
        match self {
            FetchError::Admin(error) => error.exit_code(),
            FetchError::NotAStatus(_) => EXIT_UNREACHABLE,
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Admin(error) => write!(f, "{error}"),
            FetchError::NotAStatus(why) => write!(
                f,
                "the admin endpoint answered, but not with a status ({why}): is it a `controlplane serve` of this version?"
            ),
        }
    }
}

async fn fetch(target: &Target) -> Result<Status, FetchError> {
    let value = request(target, reqwest::Method::GET, "/admin/status", None)
        .await
        .map_err(FetchError::Admin)?;
    serde_json::from_value(value).map_err(|e| FetchError::NotAStatus(e.to_string()))
}

/// The data directory to judge: the one `--data` named (where serve's
/// admin.json was found), else the one the status names, which is relative
/// to where serve runs when it was given relative.
fn history_dir(args: &AdminArgs, status: &Status) -> PathBuf {
    args.data.clone().unwrap_or_else(|| status.data.clone())
}

/// Judges the history in `dir`: the board, or why it could not be read.
fn judge(dir: &Path) -> Result<Board, String> {
    if !dir.is_dir() {
        return Err(format!(
            "no directory {} here (a relative data directory is relative to where serve runs: run watch there, or give --data DIR)",
            dir.display()
        ));
    }
    dst::real::check_history_with(dir, &dst::real::RealOptions::default())
        .map(|report| Board::of(&report))
        .map_err(|error| error.to_string())
}

fn wall_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs `watch`; returns the exit code.
pub fn watch(args: WatchArgs) -> ExitCode {
    let target = match args.admin.resolve() {
        Ok(target) => target,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(crate::cli::EXIT_BAD_INPUT);
        }
    };
    if !args.once && !std::io::stdout().is_terminal() {
        eprintln!(
            "error: watch draws on a terminal and stdout is not one: use --once for a plain-text frame"
        );
        return ExitCode::from(crate::cli::EXIT_BAD_INPUT);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(crate::cli::EXIT_IO);
        }
    };
    runtime.block_on(async {
        // Ask once before touching the terminal: a wrong token or a
        // stopped server is one plain line and an exit code.
        let status = match fetch(&target).await {
            Ok(status) => status,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(error.exit_code());
            }
        };
        if args.once {
            once(&args, target, status).await
        } else {
            live(&args, target, status).await
        }
    })
}

/// `--once`: judge, draw one frame on a test backend, print it.
async fn once(args: &WatchArgs, target: Target, status: Status) -> ExitCode {
    let dir = history_dir(&args.admin, &status);
    let mut screen = Screen::new(target.url, args.interval, false);
    screen.verdicts = match tokio::task::spawn_blocking(move || judge(&dir)).await {
        Ok(Ok(board)) => Verdicts::Ready(board, 0),
        Ok(Err(error)) => Verdicts::Failed(error),
        Err(panic) => Verdicts::Failed(format!("the checkers panicked: {panic}")),
    };
    screen.status = Some(status);
    screen.now_ms = wall_now_ms();
    print!("{}", view::plain_text(&screen, args.width, args.height));
    ExitCode::SUCCESS
}

/// What a key asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Quit,
    Pause,
    Refresh,
    Scroll(isize),
}

/// The action of `key`, if it has one.
fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let control = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c') if control => Action::Quit,
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        KeyCode::Char('p') | KeyCode::Char(' ') => Action::Pause,
        KeyCode::Char('r') => Action::Refresh,
        KeyCode::Up | KeyCode::Char('k') => Action::Scroll(-1),
        KeyCode::Down | KeyCode::Char('j') => Action::Scroll(1),
        KeyCode::PageUp => Action::Scroll(-10),
        KeyCode::PageDown => Action::Scroll(10),
        KeyCode::Home | KeyCode::Char('g') => Action::Scroll(isize::MIN / 2),
        KeyCode::End | KeyCode::Char('G') => Action::Scroll(isize::MAX / 2),
        _ => return None,
    })
}

/// The terminal in raw mode on the alternate screen; put back when
/// dropped, whichever way the view ends. (A panic is put back by the hook
/// `ratatui::try_init` installs.)
struct TerminalGuard(ratatui::DefaultTerminal);

impl TerminalGuard {
    fn enter() -> std::io::Result<Self> {
        match ratatui::try_init() {
            Ok(terminal) => Ok(TerminalGuard(terminal)),
            Err(error) => {
                // Raw mode may be on already: put it back before saying so.
                ratatui::restore();
                Err(error)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = self.0.show_cursor();
        ratatui::restore();
    }
}

/// Reads terminal events on a thread of its own (crossterm's reads block)
/// until `stop` is set or the view is gone.
fn read_events(events: mpsc::UnboundedSender<Event>, stop: Arc<AtomicBool>) {
    // Bounded: ends within a poll of `stop` being set.
    while !stop.load(Ordering::Relaxed) {
        match event::poll(Duration::from_millis(100)) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(_) => return,
        }
        let Ok(event) = event::read() else {
            return;
        };
        if events.send(event).is_err() {
            return;
        }
    }
}

/// Why the live view ended.
enum End {
    Quit,
    Failed(std::io::Error),
}

/// The live view, until a quit key, a signal or a terminal error.
async fn live(args: &WatchArgs, target: Target, status: Status) -> ExitCode {
    let dir = history_dir(&args.admin, &status);
    let mut screen = Screen::new(target.url.clone(), args.interval, true);
    screen.status = Some(status);
    let mut guard = match TerminalGuard::enter() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: cannot set up the terminal: {error}");
            return ExitCode::from(crate::cli::EXIT_IO);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (event_sender, events) = mpsc::unbounded_channel();
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || read_events(event_sender, stop))
    };
    let end = run(&mut guard.0, &mut screen, args, &target, &dir, events).await;
    stop.store(true, Ordering::Relaxed);
    drop(guard);
    let _ = reader.join();
    match end {
        End::Quit => ExitCode::SUCCESS,
        End::Failed(error) => {
            eprintln!("error: drawing on the terminal failed: {error}");
            ExitCode::from(crate::cli::EXIT_IO)
        }
    }
}

/// The view's loop: draw, then wait for a key, a status, a verdict, a
/// signal or the next refresh.
async fn run(
    terminal: &mut ratatui::DefaultTerminal,
    screen: &mut Screen,
    args: &WatchArgs,
    target: &Target,
    dir: &Path,
    mut events: mpsc::UnboundedReceiver<Event>,
) -> End {
    use tokio::signal::unix::{SignalKind, signal};
    let (status_sender, mut statuses) = mpsc::channel::<Result<Status, FetchError>>(1);
    let (board_sender, mut boards) = mpsc::channel::<Result<Board, String>>(1);
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut hangup = signal(SignalKind::hangup()).ok();
    let mut status_at = Instant::now();
    let mut board_at: Option<Instant> = None;
    let mut next_fetch = Instant::now() + args.interval;
    let mut next_check = Instant::now();
    let (mut fetching, mut checking) = (false, false);
    loop {
        let now = Instant::now();
        if !screen.paused && !fetching && now >= next_fetch {
            fetching = true;
            let (target, sender) = (target.clone(), status_sender.clone());
            tokio::spawn(async move {
                let _ = sender.send(fetch(&target).await).await;
            });
        }
        if !screen.paused && !checking && now >= next_check {
            checking = true;
            let (dir, sender) = (dir.to_path_buf(), board_sender.clone());
            tokio::task::spawn_blocking(move || {
                let board = std::panic::catch_unwind(|| judge(&dir))
                    .unwrap_or_else(|_| Err("the checkers panicked".to_string()));
                let _ = sender.blocking_send(board);
            });
        }
        screen.now_ms = wall_now_ms();
        screen.status_age_ms = status_at.elapsed().as_millis() as u64;
        if let (Verdicts::Ready(_, age_ms), Some(at)) = (&mut screen.verdicts, board_at) {
            *age_ms = at.elapsed().as_millis() as u64;
        }
        if let Err(error) = terminal.draw(|frame| view::render(frame, screen)) {
            return End::Failed(error);
        }
        // Redraw at least every second, so ages and countdowns move.
        let mut wake = now + Duration::from_secs(1);
        if !screen.paused {
            if !fetching {
                wake = wake.min(next_fetch);
            }
            if !checking {
                wake = wake.min(next_check);
            }
        }
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return End::Quit };
                let Event::Key(key) = event else { continue };
                match action(key) {
                    Some(Action::Quit) => return End::Quit,
                    Some(Action::Pause) => screen.paused = !screen.paused,
                    Some(Action::Refresh) => {
                        screen.paused = false;
                        next_fetch = Instant::now();
                        next_check = Instant::now();
                    }
                    Some(Action::Scroll(delta)) => screen.scroll_by(delta),
                    None => {}
                }
            }
            Some(result) = statuses.recv() => {
                fetching = false;
                next_fetch = Instant::now() + args.interval;
                match result {
                    Ok(status) => {
                        screen.status = Some(status);
                        screen.link = Link::Up;
                        status_at = Instant::now();
                    }
                    Err(error) => {
                        let tries = match &screen.link {
                            Link::Down { tries, .. } => tries + 1,
                            Link::Up => 1,
                        };
                        screen.link = Link::Down { error: error.to_string(), tries };
                    }
                }
            }
            Some(result) = boards.recv() => {
                checking = false;
                next_check = Instant::now() + args.check_every;
                match result {
                    Ok(board) => {
                        screen.verdicts = Verdicts::Ready(board, 0);
                        board_at = Some(Instant::now());
                    }
                    Err(error) => screen.verdicts = Verdicts::Failed(error),
                }
            }
            _ = recv_signal(&mut terminate) => return End::Quit,
            _ = recv_signal(&mut hangup) => return End::Quit,
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}

/// The next delivery of `signal`; never, if it could not be installed.
async fn recv_signal(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
