//! Property tests of the parsers: each gets real inputs (fixtures) mutated
//! at random (bytes replaced, deleted, duplicated, lines cut or swapped,
//! numbers made huge or negative) and arbitrary text, and must return,
//! never panic. Shared by the agent's and the collector's suites.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// One edit of a seed text; positions are fractions of its length.
#[derive(Debug, Clone)]
enum Edit {
    Replace(f64, char),
    Delete(f64, usize),
    Duplicate(f64, usize),
    Insert(f64, String),
    CutAt(f64),
    SwapLines(f64, f64),
}

fn edit() -> impl Strategy<Value = Edit> {
    let position = 0.0..1.0f64;
    let wild = prop_oneof![
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("NaN".to_owned()),
        Just("1e309".to_owned()),
        Just("\n".to_owned()),
        Just(":".to_owned()),
        Just("{".to_owned()),
        Just("\"".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("é".to_owned()),
        "[ -~]{0,12}",
    ];
    prop_oneof![
        (position.clone(), any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
        (position.clone(), 1..64usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (position.clone(), 1..64usize).prop_map(|(at, n)| Edit::Duplicate(at, n)),
        (position.clone(), wild).prop_map(|(at, s)| Edit::Insert(at, s)),
        position.clone().prop_map(Edit::CutAt),
        (position.clone(), position).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn boundary(text: &str, at: f64) -> usize {
    let mut i = ((text.len() as f64) * at) as usize;
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i.min(text.len())
}

fn apply(mut text: String, edit: &Edit) -> String {
    match edit {
        Edit::Replace(at, c) => {
            let i = boundary(&text, *at);
            if let Some(old) = text[i..].chars().next() {
                text.replace_range(i..i + old.len_utf8(), &c.to_string());
            }
        }
        Edit::Delete(at, n) => {
            let i = boundary(&text, *at);
            let j = boundary(&text, ((i + n) as f64 / text.len().max(1) as f64).min(1.0));
            text.replace_range(i..j.max(i), "");
        }
        Edit::Duplicate(at, n) => {
            let i = boundary(&text, *at);
            let j = boundary(&text, ((i + n) as f64 / text.len().max(1) as f64).min(1.0));
            let piece = text[i..j.max(i)].to_owned();
            text.insert_str(i, &piece);
        }
        Edit::Insert(at, s) => {
            let i = boundary(&text, *at);
            text.insert_str(i, s);
        }
        Edit::CutAt(at) => {
            let i = boundary(&text, *at);
            text.truncate(i);
        }
        Edit::SwapLines(a, b) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let (a, b) = (
                    ((lines.len() as f64) * a) as usize % lines.len(),
                    ((lines.len() as f64) * b) as usize % lines.len(),
                );
                lines.swap(a, b);
            }
            text = lines.join("\n");
        }
    }
    text
}

/// Seeds mutated by 1 to 8 edits, or arbitrary text (one case in five).
pub fn inputs(seeds: &[String]) -> BoxedStrategy<String> {
    let seeds = seeds.to_vec();
    let mutated = (0..seeds.len(), proptest::collection::vec(edit(), 1..8))
        .prop_map(move |(seed, edits)| edits.iter().fold(seeds[seed].clone(), apply));
    prop_oneof![4 => mutated, 1 => any::<String>()].boxed()
}

/// Runs `check` on `cases` inputs made from `seeds`; a panic (or an
/// assertion in `check`) fails the test with the shrunk input. Returns
/// how many cases ran, and prints it.
pub fn run(name: &str, seeds: &[String], cases: u32, check: impl Fn(&str)) -> u32 {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let ran = std::cell::Cell::new(0u32);
    let result = runner.run(&inputs(seeds), |text| {
        check(&text);
        ran.set(ran.get() + 1);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    eprintln!("{name}: {} cases, no panic escaped", ran.get());
    ran.get()
}
