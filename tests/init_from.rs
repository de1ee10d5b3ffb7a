//! Fine-tuning (`train --init-from`) and exported checkpoints (`charrnn export`), through the
//! built binary in a temp folder: the vocabulary matched by character, an exact resume, the
//! record of the base, and each bad input as one line and exit 2.

mod common;
use common::*;
use std::path::Path;

/// A base model: the small flags' 2×48 LSTM, 5 steps on the fox line (vocabulary `\n ␠ . a–z`).
fn base(d: &Dir) -> String {
    let f = repetitive(d);
    train(d, &f, "base", &["--steps", "5", "--sample-every", "0"]).ok();
    "base/last.safetensors".into()
}

/// Fine-tunes `base` on `text` into `out` with the small batch, on one thread.
fn finetune(d: &Dir, text: &Path, base: &str, out: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "train",
        text.to_str().unwrap(),
        "--init-from",
        base,
        "--out",
        out,
        "--batch",
        "8",
        "--seq",
        "32",
        "--threads",
        "1",
        "--sample-every",
        "0",
    ];
    args.extend_from_slice(extra);
    d.run(&args)
}

/// A character's rows in a checkpoint: its column of layer 0's weight_ih (one-hot input), its
/// head.weight row and its head.bias.
fn rows(ck: &charrnn::checkpoint::Checkpoint, c: char) -> (Vec<f32>, Vec<f32>, f32) {
    let layout = charrnn::model::Layout::new(ck.model);
    let (v, h) = (ck.model.vocab, ck.model.hidden);
    let id = ck
        .vocab
        .id(c)
        .unwrap_or_else(|| panic!("{c:?} not in the vocabulary")) as usize;
    let w_ih = layout.find("lstm.weight_ih_l0").unwrap();
    let column = (0..w_ih.shape[0])
        .map(|r| ck.params[w_ih.offset + r * v + id])
        .collect();
    let head_row = ck.params[layout.head_w + id * h..][..h].to_vec();
    (column, head_row, ck.params[layout.head_b + id])
}

/// Every tensor without a row per character, by name.
fn other_tensors(ck: &charrnn::checkpoint::Checkpoint) -> Vec<(String, Vec<f32>)> {
    let layout = charrnn::model::Layout::new(ck.model);
    layout
        .tensors
        .iter()
        .filter(|t| !["lstm.weight_ih_l0", "head.weight", "head.bias"].contains(&t.name.as_str()))
        .map(|t| (t.name.clone(), ck.params[t.offset..][..t.len].to_vec()))
        .collect()
}

#[test]
fn the_vocabulary_is_matched_by_character_not_by_index() {
    let d = Dir::new("init-vocab");
    let b = base(&d);
    let base_ck = tensors(&d.path(&b));
    // A permuted subset of the base's characters; and a text with new characters, two of them
    // ('!', 'A') sorting before most of the base's, so that the base's ids move.
    let subset = d.write("subset.txt", "zyx wvu. god fox.\n".repeat(200));
    let novel = d.write(
        "novel.txt",
        "A fox! Über den Fluß.\nthe lazy dog\n".repeat(100),
    );
    for (text, out) in [(&subset, "subset"), (&novel, "novel")] {
        // --steps 0: the starting point, validated and saved before any step.
        finetune(&d, text, &b, out, &["--steps", "0"]).ok();
        let ck = tensors(&d.path(&format!("{out}/last.safetensors")));
        assert_eq!(ck.train.as_ref().unwrap().state.step, 0);
        // Every character of the base stays, with the base's rows; the rest is the base's.
        for &c in &base_ck.vocab.chars {
            assert_eq!(rows(&ck, c), rows(&base_ck, c), "{out}: rows of {c:?}");
        }
        assert_eq!(other_tensors(&ck), other_tensors(&base_ck), "{out}");
        // The text's characters are all in the vocabulary.
        let text_chars = std::fs::read_to_string(text).unwrap();
        assert!(
            text_chars.chars().all(|c| ck.vocab.id(c).is_some()),
            "{out}"
        );
    }
    let novel_ck = tensors(&d.path("novel/last.safetensors"));
    // The base's ids did move: a by-index copy would have given 'a' the row of another.
    let id = |ck: &charrnn::checkpoint::Checkpoint, c| ck.vocab.id(c).unwrap();
    assert_ne!(id(&novel_ck, 'a'), id(&base_ck, 'a'));
    // A new character: its input column and head row are the mean of the shared characters'
    // (the base's that occur in the text), its bias mean_S(b) + ln f − mean_S(ln f), with f a
    // character's share of the text (model/carry's header).
    let text = std::fs::read_to_string(&novel).unwrap();
    let mut counts = std::collections::BTreeMap::<char, f64>::new();
    for c in text.chars() {
        *counts.entry(c).or_default() += 1.0;
    }
    let n = text.chars().count() as f64;
    let shared: Vec<char> = counts
        .keys()
        .copied()
        .filter(|&c| base_ck.vocab.id(c).is_some())
        .collect();
    let mean =
        |f: &dyn Fn(char) -> f64| shared.iter().map(|&c| f(c)).sum::<f64>() / shared.len() as f64;
    for new in ['A', '!', 'Ü', 'ß'] {
        let (col, head, bias) = rows(&novel_ck, new);
        for (j, x) in col.iter().enumerate() {
            let want = mean(&|c| rows(&base_ck, c).0[j] as f64);
            assert!(
                (*x as f64 - want).abs() < 1e-5,
                "{new:?} input {j}: {x} vs {want}"
            );
        }
        for (j, x) in head.iter().enumerate() {
            let want = mean(&|c| rows(&base_ck, c).1[j] as f64);
            assert!(
                (*x as f64 - want).abs() < 1e-5,
                "{new:?} head {j}: {x} vs {want}"
            );
        }
        let want = mean(&|c| rows(&base_ck, c).2 as f64) + (counts[&new] / n).ln()
            - mean(&|c| (counts[&c] / n).ln());
        assert!(
            (bias as f64 - want).abs() < 1e-4,
            "{new:?} bias {bias} vs {want}"
        );
    }
}

#[test]
fn a_fine_tuning_run_resumes_exactly() {
    let d = Dir::new("init-resume");
    let b = base(&d);
    let f = d.write(
        "notes.txt",
        "Die Füße über der Straße, the lazy dog.\n".repeat(300),
    );
    // 60 steps in one go; 30 then a resume to 60. A warm-up and the dropout's masks (the
    // fine-tuning default's) run across the resume; a constant rate, since a cosine spans the
    // planned steps, which differ between the runs.
    let flags = |steps: &'static str| {
        [
            "--steps",
            steps,
            "--eval-every",
            "1000",
            "--warmup",
            "50",
            "--lr-schedule",
            "constant",
        ]
    };
    finetune(&d, &f, &b, "one", &flags("60")).ok();
    finetune(&d, &f, &b, "two", &flags("30")).ok();
    std::fs::copy(d.path("two/last.safetensors"), d.path("mid.safetensors")).unwrap();
    let r = resume(&d, &f, "two/last.safetensors", "60").ok();
    assert!(r.stderr().contains("resuming at step 30"), "{}", r.stderr());
    let (one, two, mid) = (
        tensors(&d.path("one/last.safetensors")),
        tensors(&d.path("two/last.safetensors")),
        tensors(&d.path("mid.safetensors")),
    );
    assert_eq!(two.train.as_ref().unwrap().state.step, 60);
    assert!(one.params == two.params, "weights differ");
    let (a, b) = (one.train.as_ref().unwrap(), two.train.as_ref().unwrap());
    assert!(a.resume == b.resume, "Adam state or carried state differs");
    assert!(
        mid.params != one.params,
        "the comparison must be able to fail"
    );
    // The record of the base survives the resume.
    let base_sha = sha256_of(&d.path("base/last.safetensors"));
    for ck in [&one, &two] {
        let init = ck
            .train
            .as_ref()
            .unwrap()
            .config
            .init_from
            .as_ref()
            .unwrap();
        assert_eq!(init.sha256, base_sha);
        assert_eq!(init.file, "base/last.safetensors");
    }
}

fn sha256_of(p: &Path) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

#[test]
fn info_and_the_run_record_what_a_fine_tuning_run_started_from() {
    let d = Dir::new("init-info");
    let b = base(&d);
    let base_best = tensors(&d.path(&b)).train.unwrap().state.best_val.unwrap();
    let f = d.write("names.txt", "Anna\nBerta\nClara\nDora\n".repeat(200));
    let r = finetune(&d, &f, &b, "names", &["--steps", "3"]).ok();
    let err = r.stderr();
    assert!(err.contains("starting from base/last.safetensors"), "{err}");
    assert!(err.contains("fine-tuning: the base's size"), "{err}");
    let info = d.run(&["info", "names/last.safetensors"]).ok().stdout();
    let sha = sha256_of(&d.path(&b));
    assert!(
        info.contains("fine-tuned from: base/last.safetensors"),
        "{info}"
    );
    assert!(info.contains(&sha), "{info}");
    assert!(
        info.contains(&format!("{base_best:.4} nats/char")),
        "{info}"
    );
    let config = std::fs::read_to_string(d.path("names/config.json")).unwrap();
    assert!(config.contains(&sha), "{config}");
}

#[test]
fn bad_fine_tuning_inputs_exit_2_with_one_clear_line() {
    let d = Dir::new("init-bad");
    let b = base(&d);
    let f = d.write("text.txt", "the lazy dog and the quick fox.\n".repeat(100));
    finetune(&d, &f, "text.txt", "x", &["--steps", "2"])
        .bad("--init-from: text.txt is not a charrnn checkpoint");
    finetune(&d, &f, "missing.safetensors", "x", &["--steps", "2"]).bad("missing.safetensors");
    for (flag, value, base_has) in [
        ("--hidden", "64", "48"),
        ("--layers", "3", "2"),
        ("--cell", "gru", "lstm"),
        ("--embed", "16", "0"),
    ] {
        finetune(&d, &f, &b, "x", &["--steps", "2", flag, value])
            .bad(&format!("{flag} {value} (the base has {base_has})"));
    }
    // Flags that agree with the base are fine.
    finetune(
        &d,
        &f,
        &b,
        "same",
        &["--steps", "2", "--hidden", "48", "--cell", "lstm"],
    )
    .ok();
    finetune(&d, &f, &b, "x", &["--resume", "same/last.safetensors"])
        .bad("--init-from starts a new run from a model and --resume continues a run");
    assert!(!d.path("x").exists(), "a refused run leaves no folder");
    // A text the base knows few characters of: a warning with the share, then training.
    let cyrillic = d.write("ru.txt", "съешь же ещё этих мягких булок.\n".repeat(100));
    let r = finetune(&d, &cyrillic, &b, "ru", &["--steps", "2"]).ok();
    let err = r.stderr();
    let warning = err
        .lines()
        .find(|l| l.contains("warning: the base knows only"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(warning.contains("% of the text's characters"), "{warning}");
    assert!(d.path("ru/last.safetensors").exists());
    // A text of the base's own characters: no warning.
    assert!(!d
        .run(&["info", "same/last.safetensors"])
        .ok()
        .stdout()
        .is_empty());
    let r = finetune(&d, &f, &b, "plain", &["--steps", "2"]).ok();
    assert!(!r.stderr().contains("warning"), "{}", r.stderr());
    // --steps 0 is for fine-tuning only.
    train(&d, &f, "zero", &["--steps", "0"]).bad("--steps must be at least 1");
}

#[test]
fn an_export_holds_the_weights_alone_and_every_reader_but_resume_takes_it() {
    let d = Dir::new("export");
    let b = base(&d);
    let full = tensors(&d.path(&b));
    d.run(&["export", &b, "w32.safetensors"]).ok();
    // Into a folder that does not exist: the file asked for, not the temporary one beside it.
    let r = d.run(&["export", &b, "no-such-dir/w.safetensors"]);
    assert!(!r.stderr().contains(".tmp"), "{}", r.stderr());
    r.bad("cannot write no-such-dir/w.safetensors: No such file or directory");
    let r = d
        .run(&["export", &b, "w16.safetensors", "--precision", "bf16"])
        .ok();
    assert!(r.stderr().contains("bf16"), "{}", r.stderr());
    let size = |p: &str| std::fs::metadata(d.path(p)).unwrap().len();
    assert!(
        size("w32.safetensors") * 2 < size(&b),
        "no moments or state"
    );
    assert!(
        size("w16.safetensors") * 3 < size("w32.safetensors") * 2,
        "half the bytes per weight"
    );
    // f32: the same weights, bit for bit; bf16: each rounded to 8 bits of mantissa.
    let w32 = charrnn::checkpoint::load_model(&d.path("w32.safetensors")).unwrap();
    let w16 = charrnn::checkpoint::load_model(&d.path("w16.safetensors")).unwrap();
    assert!(w32.params == full.params);
    assert!(w16.params != full.params);
    for (x, y) in w16.params.iter().zip(&full.params) {
        assert!((x - y).abs() <= y.abs() / 256.0, "{x} vs {y}");
        assert_eq!(x.to_bits() & 0xFFFF, 0, "{x} is not a bf16 value");
    }
    assert!(w32.weights_only && w16.weights_only && !full.weights_only);
    // sample, eval and info read both; an f32 export samples the same text as the checkpoint.
    let sample = |p: &str| {
        d.run(&["sample", p, "--length", "80", "--seed", "3"])
            .ok()
            .stdout()
    };
    assert_eq!(sample("w32.safetensors"), sample(&b));
    sample("w16.safetensors");
    d.run(&["eval", "w16.safetensors", "fox.txt"]).ok();
    let info = d.run(&["info", "w16.safetensors"]).ok().stdout();
    assert!(info.contains("the weights alone, in bf16"), "{info}");
    assert!(info.contains("training: step 5"), "{info}");
    assert!(
        !info.contains("--resume"),
        "an export is not resumed: {info}"
    );
    // --resume refuses it; --init-from starts from it.
    let fox = d.path("fox.txt");
    resume(&d, &fox, "w16.safetensors", "10")
        .bad("cannot be resumed; start a new run from it with --init-from");
    finetune(&d, &fox, "w16.safetensors", "ft", &["--steps", "2"]).ok();
    // Not a checkpoint, or a folder as the output: one line.
    d.run(&["export", "fox.txt", "x.safetensors"])
        .bad("is not a charrnn checkpoint");
    d.run(&["export", &b, "base"]).bad("is a folder");
}
