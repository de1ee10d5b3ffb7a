//! Small texts get small models: a list of 300 made-up names and a 20,000-character text, each
//! trained for a short time budget with nothing but the budget (and a batch that fits): the
//! size respects the data, validation comes at least every pass over the text, and the run
//! ends at or near its best validation loss.

mod common;
use common::*;
use serde_json::Value;

fn names() -> String {
    let syll = [
        "ka", "lo", "mi", "ren", "ta", "vo", "shi", "an", "el", "dor", "bri", "ne",
    ];
    (0..300)
        .map(|i: usize| {
            let n = 2 + i % 3;
            let name: String = (0..n)
                .map(|k| syll[(i * 7 + k * 5 + i / 11) % syll.len()])
                .collect();
            let mut c = name.chars();
            format!("{}{}\n", c.next().unwrap().to_ascii_uppercase(), c.as_str())
        })
        .collect()
}

/// Trains `file` for `minutes` with `extra` flags; returns (config.json, validation records,
/// stderr).
fn run(d: &Dir, file: &str, minutes: &str, extra: &[&str]) -> (Value, Vec<Value>, String) {
    let mut a = vec![
        "train",
        file,
        "--out",
        "run",
        "--minutes",
        minutes,
        "--sample-every",
        "0",
    ];
    a.extend_from_slice(extra);
    let r = d.run(&a).ok();
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("run/config.json")).unwrap()).unwrap();
    let vals = std::fs::read_to_string(d.path("run/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "val")
        .collect();
    (config, vals, r.stderr())
}

fn check(config: &Value, vals: &[Value], err: &str, max_per_char: f64) {
    let params = config["parameters"].as_f64().unwrap();
    let chars = config["corpus"]["chars"].as_f64().unwrap() * 0.9;
    assert!(
        params / chars <= max_per_char,
        "{params} parameters for {chars} training characters\n{err}"
    );
    let sizing = err
        .lines()
        .find(|l| l.starts_with("charrnn: sizing:"))
        .unwrap();
    assert!(!sizing.contains("0.00M"), "units: {sizing}");
    assert!(
        err.contains("timing training steps"),
        "the probe says what it does: {err}"
    );
    // Validation at least every pass over the text.
    let spe = config["run"]["steps_per_epoch"].as_u64().unwrap();
    let steps: Vec<u64> = vals.iter().map(|v| v["step"].as_u64().unwrap()).collect();
    assert!(steps.len() >= 3, "{steps:?}");
    assert!(
        steps.windows(2).all(|w| w[1] - w[0] <= spe.max(1)),
        "every epoch: {steps:?} (epoch {spe})"
    );
    // The run ends at or near its best.
    let losses: Vec<f64> = vals.iter().map(|v| v["loss"].as_f64().unwrap()).collect();
    let best = losses.iter().cloned().fold(f64::MAX, f64::min);
    let last = *losses.last().unwrap();
    assert!(
        last <= best * 1.05 || err.contains("memorising"),
        "last {last}, best {best}\n{err}"
    );
}

#[test]
fn a_list_of_names_gets_a_small_model_and_a_validation_every_pass() {
    let d = Dir::new("names");
    d.write("names.txt", names());
    let (config, vals, err) = run(&d, "names.txt", "0.25", &["--batch", "10"]);
    check(&config, &vals, &err, 10.0);
}

#[test]
fn a_twenty_thousand_character_text_stays_within_the_datas_bound() {
    let d = Dir::new("twenty-k");
    let text: String = names().repeat(8).chars().take(20_000).collect();
    let shuffled: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{l} {}\n", ["rode", "sang", "slept", "wrote"][i % 4]))
        .collect::<String>()
        .chars()
        .take(20_000)
        .collect();
    d.write("text.txt", shuffled);
    let (config, vals, err) = run(&d, "text.txt", "0.25", &["--batch", "20"]);
    check(&config, &vals, &err, 3.0);
}

#[test]
fn a_text_too_short_for_any_split_is_told_to_be_longer_not_given_another_val_frac() {
    let d = Dir::new("tiny");
    for text in ["ab", "abc"] {
        let f = d.write("tiny.txt", text);
        let r = d.run(&["train", f.to_str().unwrap(), "--steps", "5"]);
        assert!(!r.stderr().contains("--val-frac"), "{}", r.stderr());
        r.bad("too short to train on");
    }
    // Four characters can be split; what is short then is the validation part.
    let f = d.write("four.txt", "abcd");
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--steps",
        "5",
        "--val-frac",
        "0.1",
    ])
    .bad("use a larger --val-frac");
}
