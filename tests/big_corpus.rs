//! Corpora of any size, tried small: validation during training scores a fixed slice of the
//! validation part (and, with --full-val, all of it at the end), exactly as `charrnn eval`
//! scores that text; ids kept in a temporary file train to the same weights as ids in memory.

mod common;
use common::*;

/// Text whose validation part is not like its training part's start.
fn varied(n_lines: usize) -> String {
    (0..n_lines)
        .map(|i| {
            format!(
                "{} the quick brown fox {}.\n",
                i % 97,
                ["jumps", "naps", "runs"][i % 3]
            )
        })
        .collect()
}

/// The last "NAME X.XXXX nats/char" in `err` after `marker`.
fn loss_after(err: &str, marker: &str) -> String {
    err.lines()
        .filter(|l| l.starts_with("step "))
        .filter_map(|l| l.split(marker).nth(1))
        .next_back()
        .and_then(|s| s.split(" nats/char").next())
        .and_then(|s| s.split_whitespace().last())
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{err}"))
        .to_string()
}

#[test]
fn validation_scores_a_fixed_slice_and_optionally_the_whole_part() {
    let d = Dir::new("valslice");
    let text = varied(800);
    d.write("text.txt", &text);
    let r = train(
        &d,
        &d.path("text.txt"),
        "run",
        &[
            "--steps",
            "30",
            "--val-frac",
            "0.5",
            "--val-chars",
            "1000",
            "--full-val",
        ],
    )
    .ok();
    let err = r.stderr();
    let chars: Vec<char> = text.chars().collect();
    let n_train = (chars.len() as f64 * 0.5) as usize;
    let val_len = chars.len() - n_train;
    assert!(
        err.contains(&format!(
            "validation {val_len} (validating on its first 1000)"
        )),
        "{err}"
    );
    // The slice's loss is what eval gives for that text.
    let slice: String = chars[n_train..n_train + 1000].iter().collect();
    d.write("slice.txt", &slice);
    let during = loss_after(&err, "validation loss ");
    let eval = d
        .run(&["eval", "run/last.safetensors", "slice.txt"])
        .ok()
        .stdout();
    assert!(
        eval.contains(&format!("{during} nats/char")),
        "{during} vs {eval}"
    );
    // --full-val: the whole validation part at the end, as eval scores it.
    let whole: String = chars[n_train..].iter().collect();
    d.write("whole.txt", &whole);
    let full = loss_after(
        &err,
        &format!("whole validation part ({val_len} characters): "),
    );
    let eval = d
        .run(&["eval", "run/last.safetensors", "whole.txt"])
        .ok()
        .stdout();
    assert!(
        eval.contains(&format!("{full} nats/char")),
        "{full} vs {eval}"
    );
    assert_ne!(full, during, "the slice is not the whole part");
    // A resumed run keeps its slice.
    d.run(&[
        "train",
        "text.txt",
        "--resume",
        "run/last.safetensors",
        "--val-chars",
        "500",
        "--steps",
        "40",
    ])
    .bad("--val-chars 500 (the checkpoint has 1000)");
}

#[test]
fn ids_in_a_temporary_file_train_to_the_same_weights_as_ids_in_memory() {
    let d = Dir::new("idsdisk");
    d.write("text.txt", varied(400));
    let args = |out: &'static str| {
        let mut a = vec![
            "train",
            "text.txt",
            "--out",
            out,
            "--steps",
            "25",
            "--eval-every",
            "10",
        ];
        a.extend_from_slice(SMALL);
        a
    };
    let disk = d
        .cmd(&args("disk"))
        .env("CHARRNN_IDS_IN_MEMORY", "0")
        .output()
        .unwrap();
    assert!(
        disk.status.success(),
        "{}",
        String::from_utf8_lossy(&disk.stderr)
    );
    d.run(&args("memory")).ok();
    let (a, b) = (
        tensors(&d.path("disk/last.safetensors")),
        tensors(&d.path("memory/last.safetensors")),
    );
    assert!(a.params == b.params);
    assert_eq!(
        a.train.unwrap().state.best_val,
        b.train.unwrap().state.best_val
    );
}
