//! What `charrnn train` does with a folder that already holds something: a trained model is
//! never replaced without `--overwrite` (the same command run twice, a smaller budget into the
//! default folder, another run's folder, an older checkpoint of the same run); a folder of other
//! files is refused; an empty folder, or one left by a run stopped before its first checkpoint,
//! is used; `--overwrite` replaces the old run whole, never leaving a mix of two runs.

mod common;
use common::*;
use std::path::Path;

/// Every file in `dir` (hidden ones aside) with its bytes, sorted by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn names(dir: &Path) -> Vec<String> {
    snapshot(dir).into_iter().map(|(n, _)| n).collect()
}

/// The steps of metrics.jsonl's records.
fn logged_steps(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// A run of `steps` steps validating (and writing a step checkpoint) every 10.
fn first_run(d: &Dir, f: &Path, out: &str, steps: &str) {
    train(
        d,
        f,
        out,
        &[
            "--steps",
            steps,
            "--eval-every",
            "10",
            "--sample-every",
            "0",
        ],
    )
    .ok();
}

#[test]
fn a_second_train_into_a_folder_with_a_model_is_refused_and_loses_nothing() {
    let d = Dir::new("second-train");
    let f = repetitive(&d);
    first_run(&d, &f, "R", "30");
    let before = snapshot(&d.path("R"));
    // The case of the issue: a smaller budget and another size into the same folder.
    let r = d.run(&[
        "train",
        f.to_str().unwrap(),
        "--steps",
        "5",
        "--hidden",
        "16",
        "--out",
        "R",
        "--threads",
        "1",
    ]);
    let err = r.stderr();
    r.bad("R already holds a trained model (LSTM 2×48 at step 30, best validation loss ");
    for advice in [
        "--resume R/last.safetensors",
        "another --out",
        "--overwrite",
    ] {
        assert!(err.contains(advice), "{advice}: {err}");
    }
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(snapshot(&d.path("R")), before, "the folder changed");
}

#[test]
fn the_same_command_twice_into_the_default_folder_keeps_the_first_model() {
    let d = Dir::new("default-folder");
    let f = repetitive(&d);
    let args = [
        &[
            "train",
            f.to_str().unwrap(),
            "--steps",
            "20",
            "--sample-every",
            "0",
        ][..],
        SMALL,
    ]
    .concat();
    d.run(&args).ok();
    let before = snapshot(&d.path("runs/fox"));
    assert!(before.iter().any(|(n, _)| n == "best.safetensors"));
    d.run(&args)
        .bad("runs/fox already holds a trained model (LSTM 2×48 at step 20");
    assert_eq!(snapshot(&d.path("runs/fox")), before);
}

#[test]
fn overwrite_replaces_the_old_run_whole() {
    let d = Dir::new("overwrite");
    let f = repetitive(&d);
    first_run(&d, &f, "R", "40");
    assert!(d.path("R/step-0000040.safetensors").exists());
    d.write("R/notes.md", "mine");
    let r = d
        .run(&[
            "train",
            f.to_str().unwrap(),
            "--out",
            "R",
            "--overwrite",
            "--steps",
            "5",
            "--eval-every",
            "5",
            "--hidden",
            "16",
            "--batch",
            "8",
            "--seq",
            "32",
            "--threads",
            "1",
            "--sample-every",
            "0",
        ])
        .ok();
    assert!(
        r.stderr()
            .contains("R: removed the run it held (LSTM 2×48 at step 40"),
        "{}",
        r.stderr()
    );
    // Only the new run's files, and the user's.
    assert_eq!(
        names(&d.path("R")),
        [
            "best.safetensors",
            "config.json",
            "last.safetensors",
            "loss.svg",
            "metrics.jsonl",
            "notes.md",
            "step-0000005.safetensors"
        ]
    );
    for ck in ["best", "last", "step-0000005"] {
        let c = tensors(&d.path(&format!("R/{ck}.safetensors")));
        assert_eq!(c.model.hidden, 16, "{ck}");
        assert_eq!(c.train.unwrap().state.step, 5, "{ck}");
    }
    assert!(logged_steps(&d.path("R")).iter().all(|&s| s <= 5));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("R/config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["hidden"], 16);
    assert_eq!(
        std::fs::read_to_string(d.path("R/notes.md")).unwrap(),
        "mine"
    );
}

#[test]
fn overwrite_keeps_the_old_run_when_the_new_one_fails_before_it_starts() {
    let d = Dir::new("overwrite-fails");
    let f = repetitive(&d);
    first_run(&d, &f, "R", "20");
    let before = snapshot(&d.path("R"));
    let bad = d.write("bad.txt", [b'a', 0xc3, 0x28, b'b']);
    d.run(&[
        "train",
        bad.to_str().unwrap(),
        "--out",
        "R",
        "--overwrite",
        "--steps",
        "5",
    ])
    .bad("bad.txt");
    assert_eq!(snapshot(&d.path("R")), before);
}

#[test]
fn resuming_continues_the_folder_but_an_older_checkpoint_needs_overwrite() {
    let d = Dir::new("rewind");
    let f = repetitive(&d);
    first_run(&d, &f, "R", "30");
    let before = snapshot(&d.path("R"));
    // An older checkpoint of the same folder would replace the later ones.
    let r = resume(&d, &f, "R/step-0000010.safetensors", "40");
    let err = r.stderr();
    r.bad("R holds this run past the checkpoint resumed (step 10): LSTM 2×48 at step 30");
    assert!(
        err.contains("continue from R/last.safetensors")
            && err.contains("branch off at step 10")
            && err.contains("--overwrite to take R back to step 10"),
        "{err}"
    );
    assert_eq!(snapshot(&d.path("R")), before);
    // Branching off into a new folder is fine, and so is continuing from the newest.
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        "R/step-0000010.safetensors",
        "--out",
        "B",
        "--steps",
        "20",
        "--threads",
        "1",
    ])
    .ok();
    resume(&d, &f, "R/last.safetensors", "40").ok();
    assert_eq!(
        tensors(&d.path("R/last.safetensors"))
            .train
            .unwrap()
            .state
            .step,
        40
    );
    // With --overwrite the run goes back to step 10: what came after it is removed.
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        "R/step-0000020.safetensors",
        "--overwrite",
        "--steps",
        "25",
        "--eval-every",
        "5",
        "--threads",
        "1",
    ])
    .ok();
    let left = names(&d.path("R"));
    assert!(
        !left
            .iter()
            .any(|n| n == "step-0000030.safetensors" || n == "step-0000040.safetensors"),
        "{left:?}"
    );
    assert!(
        left.iter().any(|n| n == "step-0000025.safetensors"),
        "{left:?}"
    );
    assert_eq!(
        tensors(&d.path("R/last.safetensors"))
            .train
            .unwrap()
            .state
            .step,
        25
    );
    assert!(logged_steps(&d.path("R")).iter().all(|&s| s <= 25));
}

#[test]
fn another_runs_folder_is_not_resumed_into_without_overwrite() {
    let d = Dir::new("other-run");
    let f = repetitive(&d);
    first_run(&d, &f, "A", "20");
    first_run(&d, &f, "B", "10");
    let before = snapshot(&d.path("B"));
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        "A/last.safetensors",
        "--out",
        "B",
        "--steps",
        "30",
        "--threads",
        "1",
    ])
    .bad("B already holds a trained model (LSTM 2×48 at step 10");
    assert_eq!(snapshot(&d.path("B")), before);
    // A copy of B's newest checkpoint is B's run: resuming it into B continues it.
    std::fs::copy(d.path("B/last.safetensors"), d.path("copy.safetensors")).unwrap();
    d.run(&[
        "train",
        f.to_str().unwrap(),
        "--resume",
        "copy.safetensors",
        "--out",
        "B",
        "--steps",
        "20",
        "--threads",
        "1",
    ])
    .ok();
    assert_eq!(
        tensors(&d.path("B/last.safetensors"))
            .train
            .unwrap()
            .state
            .step,
        20
    );
}

#[test]
fn a_folder_of_other_files_is_refused_and_kept_with_overwrite() {
    let d = Dir::new("other-files");
    let f = repetitive(&d);
    std::fs::create_dir_all(d.path("notes/drafts")).unwrap();
    d.write("notes/a.txt", "a");
    d.write("notes/b.txt", "b");
    d.write("notes/c.txt", "c");
    let r = train(&d, &f, "notes", &["--steps", "5"]);
    let err = r.stderr();
    r.bad("notes holds files that are not a charrnn run's (a.txt, b.txt, c.txt and 1 more)");
    assert!(err.contains("--overwrite"), "{err}");
    assert!(!d.path("notes/last.safetensors").exists());
    // Hidden files are not counted.
    std::fs::create_dir_all(d.path("hidden")).unwrap();
    d.write("hidden/.DS_Store", "x");
    train(&d, &f, "hidden", &["--steps", "5"]).ok();
    // With --overwrite the run is written among them; they are kept.
    train(&d, &f, "notes", &["--steps", "5", "--overwrite"]).ok();
    for kept in ["a.txt", "b.txt", "c.txt"] {
        assert!(d.path("notes").join(kept).exists(), "{kept}");
    }
    assert!(d.path("notes/drafts").is_dir());
    assert!(d.path("notes/last.safetensors").exists());
}

#[test]
fn an_empty_folder_or_a_run_stopped_before_its_first_checkpoint_is_used() {
    let d = Dir::new("half-made");
    let f = repetitive(&d);
    std::fs::create_dir_all(d.path("empty")).unwrap();
    train(&d, &f, "empty", &["--steps", "5"]).ok();
    assert!(d.path("empty/last.safetensors").exists());
    // What a run stopped before its first checkpoint leaves: config.json, a metrics.jsonl
    // with training lines, perhaps a chart; and its lock file.
    std::fs::create_dir_all(d.path("stopped")).unwrap();
    d.write("stopped/config.json", "{\"model\": {\"hidden\": 99}}");
    d.write(
        "stopped/metrics.jsonl",
        "{\"kind\":\"train\",\"step\":777,\"epoch\":0.1,\"chars\":1,\"loss\":3.0,\"chars_per_s\":1.0,\"elapsed_s\":1.0,\"rss_mb\":1.0,\"lr\":0.004}\n",
    );
    d.write("stopped/loss.svg", "<svg>old</svg>");
    d.write("stopped/.lock", "pid 1: charrnn train");
    let r = train(&d, &f, "stopped", &["--steps", "5"]).ok();
    assert!(
        r.stderr().contains(
            "stopped: removed the files of a run stopped before its first checkpoint: config.json, loss.svg, metrics.jsonl"
        ),
        "{}",
        r.stderr()
    );
    assert!(!logged_steps(&d.path("stopped")).contains(&777));
    let chart = std::fs::read_to_string(d.path("stopped/loss.svg")).unwrap();
    assert!(chart.contains("charrnn: stopped"), "{chart}");
    // The old config.json (hidden 99) is replaced by this run's (compared as JSON: the temp
    // folder's name, which holds the test's process id, may contain "99").
    let config = std::fs::read_to_string(d.path("stopped/config.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_ne!(v["model"]["hidden"], 99, "{config}");
    assert!(v["model"]["hidden"].is_u64(), "{config}");
}
#[test]
fn a_refused_resume_leaves_the_folder_as_it_was() {
    let d = Dir::new("refused-resume");
    let f = repetitive(&d);
    first_run(&d, &f, "R", "20");
    let before = snapshot(&d.path("R"));
    resume(&d, &f, "R/last.safetensors", "10").bad("already at step 20");
    assert_eq!(snapshot(&d.path("R")), before);
}
