//! What a careful attacker found (issue 29): sizes past memory, folders that drop texts,
//! weights that are not finite, advice naming flags a command lacks, losses that cancel at
//! large logits, and smaller frictions. Each case is run as a user would, on the built binary.

mod common;
use charrnn::checkpoint::{self, TrainRef};
use charrnn::model::Layout;
use common::*;
use std::path::PathBuf;

/// A copy of fixture checkpoint `name` at `to` in `d`, with `edit(tensor name, values)` applied
/// to every parameter tensor; the training state (moments, carried state) is kept when the
/// fixture has one.
fn edited(d: &Dir, name: &str, to: &str, edit: impl Fn(&str, &mut [f32])) -> PathBuf {
    let ck = checkpoint::load(&fixture(name)).unwrap();
    let mut params = ck.params;
    for t in &Layout::new(ck.model).tensors {
        edit(&t.name, &mut params[t.offset..][..t.len]);
    }
    let path = d.path(to);
    let train = ck.train.as_ref().map(|tr| {
        let r = tr.resume.as_ref().unwrap();
        TrainRef {
            config: &tr.config,
            state: &tr.state,
            adam: &r.adam,
            carry: &r.carry,
        }
    });
    checkpoint::save(&path, &ck.model, &ck.vocab, &params, train).unwrap();
    path
}

/// The number just before `unit` in `text` (e.g. the 1.2345 of "1.2345 nats/char").
fn number_before(text: &str, unit: &str) -> f64 {
    let head = &text[..text
        .find(unit)
        .unwrap_or_else(|| panic!("no {unit} in {text}"))];
    head.trim_end()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_start_matches('(')
        .parse()
        .unwrap_or_else(|_| panic!("no number before {unit} in {text}"))
}

#[test]
fn eval_gives_the_right_loss_at_logits_near_the_largest_float() {
    let d = Dir::new("huge-logits");
    // Every output bias at 3e38: the logits are all equal (W·h is far below their spacing),
    // so the model guesses uniformly and the loss is ln V.
    let ck = edited(
        &d,
        "format-v1-lstm-2x16.safetensors",
        "huge.safetensors",
        |n, v| {
            if n == "head.bias" {
                v.fill(3e38);
            }
        },
    );
    let vocab = checkpoint::load(&ck).unwrap().vocab.len() as f64;
    let text = d.write("t.txt", LINE.repeat(3));
    let out = d
        .run(&["eval", ck.to_str().unwrap(), text.to_str().unwrap()])
        .ok()
        .stdout();
    let nats = number_before(&out, "nats/char");
    assert!(
        (nats - vocab.ln()).abs() < 1e-3,
        "want ln {vocab}; got {out}"
    );
    let out = d
        .run(&[
            "sample",
            ck.to_str().unwrap(),
            "--length",
            "20",
            "--seed",
            "1",
            "--show-logprob",
        ])
        .ok();
    let bits = number_before(&out.stderr(), "bits/char");
    assert!(
        (bits - vocab.log2()).abs() < 1e-3,
        "want log2 {vocab}; got {}",
        out.stderr()
    );
}
