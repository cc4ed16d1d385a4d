//! `docs/lessons/` is generated from the bug zoo, and these tests keep it
//! so: the committed pages must equal what `controlplane lessons` writes
//! today, and the one command each page gives for a bug must really show
//! the checker catching it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{controlplane, scratch, text};
use dst::lessons::{PATTERNS, REGENERATE, catching_command};
use dst::zoo::exhibit;
use plane::config::Bug;

fn committed_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lessons"))
}

/// The first lines where `committed` and `generated` differ, as a diff.
fn first_differences(committed: &str, generated: &str) -> String {
    let old: Vec<&str> = committed.lines().collect();
    let new: Vec<&str> = generated.lines().collect();
    let mut out = String::new();
    let mut shown = 0;
    for index in 0..old.len().max(new.len()) {
        let (a, b) = (old.get(index), new.get(index));
        if a != b {
            out.push_str(&format!("line {}:\n", index + 1));
            if let Some(a) = a {
                out.push_str(&format!("- {a}\n"));
            }
            if let Some(b) = b {
                out.push_str(&format!("+ {b}\n"));
            }
            shown += 1;
            if shown == 8 {
                out.push_str("...\n");
                break;
            }
        }
    }
    out
}

#[test]
fn the_committed_lessons_are_what_the_zoo_generates_today() {
    let out = scratch("lessons", "regenerated");
    let out_arg = out.to_str().expect("utf-8 path");
    // The pictures need a browser and differ between browser versions:
    // tests/timeline.rs loads the committed timelines in Chromium.
    let run = controlplane(&["lessons", "--out", out_arg, "--no-screenshots"]);
    assert!(
        run.status.success(),
        "lessons failed: {}",
        text(&run.stderr)
    );
    let generated: BTreeSet<String> = std::fs::read_dir(&out)
        .expect("the pages were written")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut expected: BTreeSet<String> = PATTERNS
        .iter()
        .flat_map(|pattern| {
            [
                format!("{}.md", pattern.slug),
                format!("{}.html", pattern.slug),
            ]
        })
        .collect();
    expected.insert("README.md".to_string());
    assert_eq!(
        generated, expected,
        "one page and one timeline per pattern plus the index"
    );
    // The committed directory holds those pages (and, from the timeline
    // work, each pattern's screenshot and HTML), nothing stale.
    for entry in std::fs::read_dir(committed_dir()).expect("docs/lessons exists") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let picture = name
            .strip_suffix(".png")
            .is_some_and(|slug| expected.contains(&format!("{slug}.html")));
        assert!(
            expected.contains(&name) || picture,
            "docs/lessons/{name} is not generated: remove it, or regenerate with `{REGENERATE}`"
        );
    }
    let mut stale = String::new();
    for name in &expected {
        let fresh = std::fs::read_to_string(out.join(name)).expect("generated page");
        let committed = std::fs::read_to_string(committed_dir().join(name)).unwrap_or_default();
        if fresh != committed {
            stale.push_str(&format!(
                "docs/lessons/{name} differs from what the code generates:\n{}\n",
                first_differences(&committed, &fresh)
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{stale}The code's behaviour changed the lessons: review the change and regenerate with `{REGENERATE}`"
    );
}

#[test]
fn each_page_s_command_shows_the_checker_catching_its_bug() {
    for pattern in &PATTERNS {
        let page = std::fs::read_to_string(committed_dir().join(format!("{}.md", pattern.slug)))
            .expect("the page is committed");
        assert!(
            page.contains(&format!(
                "![Timeline of the reproducer]({}.png)",
                pattern.slug
            )),
            "{}: the timeline line",
            pattern.slug
        );
        assert!(page.contains(&format!("({}.html)", pattern.slug)));
        for &bug in pattern.bugs {
            let exhibit = exhibit(bug);
            let command = page
                .lines()
                .find(|line| line.ends_with(&format!("--bug {bug}")) && line.contains(" simulate "))
                .unwrap_or_else(|| panic!("{}: no command for {bug}", pattern.slug));
            let seed: u64 = command
                .split_whitespace()
                .skip_while(|word| *word != "--seed")
                .nth(1)
                .and_then(|seed| seed.parse().ok())
                .unwrap_or_else(|| panic!("{command}: no seed"));
            assert_eq!(command, catching_command(exhibit.scenario, seed, bug));
            let args: Vec<&str> = command
                .split_whitespace()
                .skip_while(|word| *word != "--")
                .skip(1)
                .collect();
            let run = controlplane(&args);
            let report = text(&run.stdout);
            assert!(!run.status.success(), "{command} passed:\n{report}");
            assert!(
                report.contains(&format!("- `{}` at", exhibit.property)),
                "{command} does not report `{}`:\n{report}",
                exhibit.property
            );
        }
    }
}

#[test]
fn every_zoo_bug_has_a_lesson() {
    let taught: BTreeSet<Bug> = PATTERNS
        .iter()
        .flat_map(|pattern| pattern.bugs.iter().copied())
        .collect();
    let all: BTreeSet<Bug> = Bug::all().into_iter().collect();
    assert_eq!(taught, all);
}
