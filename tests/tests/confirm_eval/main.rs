//! The confirm evaluation set (issue 10, item 1): crops of people fully in view, partly visible
//! (cut by the frame edge, hidden by an occluder) and of motion with no person, cut as the edge
//! cuts them and judged as the cloud judges them, before (the padded box stretched to the
//! model's input, any person in it) and after (a context crop pasted at native scale, the cloud's
//! people matched to the edge's box). `set.rs` says how the samples are made and labelled.
//!
//! - With the generated models (`models/test/`, the walker clip): the rule logic end to end.
//! - With the real models and clip (`../shared`, `models/downloads/`): the figures in
//!   `design/cloud-analyzer.md` (`cargo test -p cascade-tests --test confirm_eval -- --nocapture`);
//!   SKIPPED when absent. `CASCADE_EVAL_CONTEXT=share,px` tries other context settings.

mod judge;
mod set;
mod synth;

use std::path::{Path, PathBuf};

use cascade_infer::{Detector, Frame, LoadOptions};
use cascade_shared::config::cloud::ConfirmConfig;
use cascade_shared::config::edge::CropConfig;
use cascade_tests::repo_root;
use cloud_analyzer::confirm::OnnxConfirmer;
use edge_agent::decode::{H264Decoder, VideoDecoder};
use edge_agent::source::{Container, Mp4File};

use judge::{Side, Tally};
use set::{Dropped, Group, Sample};

fn detector(manifest: &Path, threshold: f32) -> Detector {
    let mut o = LoadOptions::onnx_cpu(manifest);
    o.score_threshold = threshold;
    o.min_box_area = 0.0;
    o.backend.threads = 2;
    cascade_infer::load_detector(&o).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()))
}

/// Every `every`-th frame of the clip.
fn frames(clip: &Path, every: usize) -> Vec<Frame> {
    let mut src = Mp4File::open(clip).expect("the clip opens");
    let mut dec = H264Decoder::new().expect("decoder");
    let (mut decoded, mut out, mut i) = (Vec::new(), Vec::new(), 0usize);
    let mut keep = |decoded: &mut Vec<Frame>, out: &mut Vec<Frame>| {
        for f in decoded.drain(..) {
            if i % every == 0 {
                out.push(f);
            }
            i += 1;
        }
    };
    while let Some(au) = src.next_unit().expect("reads") {
        dec.decode(&au, &mut decoded).expect("decodes");
        keep(&mut decoded, &mut out);
    }
    dec.flush(&mut decoded).expect("flushes");
    keep(&mut decoded, &mut out);
    out
}

/// The models and the clip of one evaluation.
struct Inputs {
    clip: PathBuf,
    every: usize,
    edge: PathBuf,
    edge_threshold: f32,
    cloud: PathBuf,
}

/// Labels the frames and makes the samples: per frame with one person, its `full` sample and
/// `partial_per_frame` partly visible ones, and a `neg-beside` every 3rd; per empty frame,
/// `neg_per_frame` negatives.
fn build(inp: &Inputs, partial_per_frame: usize, neg_per_frame: usize) -> (Vec<Sample>, Dropped) {
    let mut label = detector(&inp.cloud, 0.2);
    let mut edge = detector(&inp.edge, inp.edge_threshold);
    let (mut samples, mut dropped) = (Vec::new(), Dropped::default());
    let (mut people, mut empty) = (0, 0);
    for f in frames(&inp.clip, inp.every) {
        let l = set::label(&mut label, f);
        if !l.people.is_empty() {
            samples.extend(set::positives(
                &mut edge,
                &l,
                (people, partial_per_frame),
                &mut dropped,
            ));
            if people.is_multiple_of(3) {
                samples.extend(set::beside(&l, people / 3));
            }
            people += 1;
        } else if l.empty {
            for k in 0..neg_per_frame {
                samples.push(set::negative(&l.frame, empty * neg_per_frame + k));
            }
            empty += 1;
        }
    }
    println!(
        "labelled: {people} frames with people, {empty} empty; edge missed {} partly visible ({:?}), {} variants without room",
        dropped.edge_missed.len(),
        dropped.edge_missed,
        dropped.no_room
    );
    (samples, dropped)
}

/// Evaluates `samples` before and after with the cloud model of `inp`; prints the table.
fn evaluate(inp: &Inputs, samples: &[Sample], after_crop: CropConfig) -> Tally {
    let cfg = ConfirmConfig::default();
    let crop = CropConfig::default();
    // The rule before this evaluation: any person of 5 % of the crop or more, stretched.
    let old = ConfirmConfig {
        min_box_area: 0.05,
        ..cfg.any_person()
    };
    let mut before = OnnxConfirmer::new(detector(&inp.cloud, 0.1), &old);
    let mut after = OnnxConfirmer::new(detector(&inp.cloud, 0.1), &cfg);
    let class = after.rule().class_id;
    let outcomes = judge::run(
        samples,
        &mut Side {
            crop: crop.without_context(),
            confirmer: &mut before,
        },
        &mut Side {
            crop: after_crop,
            confirmer: &mut after,
        },
    );
    let tally = Tally::new(&outcomes, &judge::rules(&cfg, &old, class));
    tally.print();
    for iou in [cfg.match_iou, cfg.strong_match_iou] {
        match judge::closest_negative(&outcomes, class, iou) {
            Some((score, i, kind)) => println!(
                "negatives: best person with IoU >= {iou} on the edge's box scores {score:.2} (IoU {i:.2}, {kind})"
            ),
            None => println!("negatives: no person with IoU >= {iou} on the edge's box"),
        }
    }
    tally
}

#[test]
fn generated_models_confirm_people_on_the_edge_box_only() {
    let repo = repo_root();
    let inp = Inputs {
        clip: repo.join("tests/fixtures/walker.mp4"),
        every: 1,
        edge: repo.join("models/blob-yolov8-int8.toml"),
        edge_threshold: 0.5,
        cloud: repo.join("models/blob-yolov8-fp32.toml"),
    };
    let (samples, _) = build(&inp, 2, 2);
    let t = evaluate(&inp, &samples, CropConfig::default());
    for g in [Group::Full, Group::Partial, Group::Negative] {
        assert!(t.count(g) >= 10, "{g:?}: {} samples", t.count(g));
    }
    assert_eq!(t.rate(Group::Full, "after"), 1.0);
    assert_eq!(t.rate(Group::Partial, "after"), 1.0);
    assert_eq!(t.rate(Group::Negative, "after"), 0.0);
    assert!(
        t.rate(Group::Negative, "context, any") > 0.0,
        "a context crop holds the person beside a shadow: only matching the edge's box rejects it"
    );
}

/// The context settings to evaluate: the defaults, or `CASCADE_EVAL_CONTEXT=share,px`.
fn context_from_env() -> CropConfig {
    let mut c = CropConfig::default();
    if let Ok(v) = std::env::var("CASCADE_EVAL_CONTEXT") {
        let mut it = v.split(',');
        c.context_share = it
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(c.context_share);
        c.context_px = it
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(c.context_px);
    }
    c
}

#[test]
fn real_models_on_the_sample_clip() {
    let repo = repo_root();
    let clip = repo.join("../shared/samples/one-by-one-person-detection.mp4");
    let cloud_file = repo.join("models/downloads/yolov8n_fp32_dequant.onnx");
    if !clip.is_file() || !cloud_file.is_file() {
        println!(
            "SKIPPED: the sample clip or models/downloads/ (scripts/fetch-models.sh) is not present"
        );
        return;
    }
    let inp = Inputs {
        clip,
        every: 10,
        edge: repo.join("models/yolov8n-int8-static.toml"),
        edge_threshold: 0.5,
        cloud: repo.join("models/yolov8n-fp32.toml"),
    };
    let (samples, _) = build(&inp, 2, 2);
    let ctx = context_from_env();
    println!("context: share {} px {}", ctx.context_share, ctx.context_px);
    let t = evaluate(&inp, &samples, ctx);
    let (full, partial, neg) = (
        t.rate(Group::Full, "after"),
        t.rate(Group::Partial, "after"),
        t.rate(Group::Negative, "after"),
    );
    println!("after: full {full:.3}, partial {partial:.3}, negatives {neg:.3}");
    assert!(full >= 0.98 && partial >= 0.9 && neg == 0.0);
}
