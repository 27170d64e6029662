//! Runs the cloud on each sample's crop before (the padded box, stretched to the model's input,
//! any person in it) and after (the context crop at native scale, matched to the edge's box), and
//! tallies confirm rates and bytes per category. The rule-only columns judge the same detections
//! with other rules (no extra model runs), to show what each part buys.

use std::collections::BTreeMap;

use cascade_infer::{Detection, RgbSource};
use cascade_shared::config::cloud::ConfirmConfig;
use cascade_shared::config::edge::CropConfig;
use cloud_analyzer::confirm::{CropInput, OnnxConfirmer, Place, Rule};
use cloud_analyzer::ingest;

use crate::set::{Group, Sample};

/// One side of the comparison: how the edge cuts, and the confirmer (its scaling) the cloud runs.
pub struct Side<'a> {
    pub crop: CropConfig,
    pub confirmer: &'a mut OnnxConfirmer,
}

/// A crop as the cloud saw it: its bytes, and the model's people with the place to judge them.
pub struct Seen {
    pub bytes: usize,
    pub dets: Vec<Detection>,
    pub size: (usize, usize),
    pub place: Place,
}

impl Seen {
    pub fn judged(&self, rule: &Rule) -> bool {
        rule.judge(&self.dets, self.size, &self.place).confirmed
    }
}

/// How close the negatives came: the highest score of a person overlapping the edge's box by
/// at least `iou` on the context crops, and the sample's kind.
pub fn closest_negative(
    outcomes: &[Outcome],
    class: u32,
    iou: f32,
) -> Option<(f32, f32, &'static str)> {
    outcomes
        .iter()
        .filter(|o| o.group == Group::Negative)
        .flat_map(|o| {
            o.after
                .dets
                .iter()
                .filter(|d| d.class_id == class)
                .map(move |d| (d.score, o.after.place.iou(&d.bbox, o.after.size), o.kind))
        })
        .filter(|c| c.1 >= iou)
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// A sample's category and what the cloud saw before and after.
pub struct Outcome {
    pub group: Group,
    pub kind: &'static str,
    pub before: Seen,
    pub after: Seen,
}

fn see(s: &Sample, side: &mut Side<'_>) -> Seen {
    let c = edge_agent::crop::make(&s.frame, &s.edge_box, &side.crop).expect("crop");
    let image = ingest::decode_jpeg(&c.jpeg).expect("jpeg");
    let size = image.size();
    let place = Place {
        edge_box: s.edge_box,
        region: c.region,
    };
    let input = CropInput { image, place };
    let dets = side
        .confirmer
        .detect(std::slice::from_ref(&input))
        .expect("confirm model");
    Seen {
        bytes: c.jpeg.len(),
        dets: dets.into_iter().next().unwrap_or_default(),
        size,
        place,
    }
}

/// What the cloud sees of every sample, before and after.
pub fn run(
    samples: &[crate::set::Sample],
    before: &mut Side<'_>,
    after: &mut Side<'_>,
) -> Vec<Outcome> {
    samples
        .iter()
        .map(|s| Outcome {
            group: s.group,
            kind: s.kind,
            before: see(s, before),
            after: see(s, after),
        })
        .collect()
}

/// The rules compared (name, on the context crop's detections, the rule): `old` and `cfg` and
/// the steps between.
pub fn rules(
    cfg: &ConfirmConfig,
    old: &ConfirmConfig,
    class_id: u32,
) -> Vec<(&'static str, bool, Rule)> {
    let no_strong = ConfirmConfig {
        strong_min_score: cfg.min_score,
        ..cfg.clone()
    };
    vec![
        ("before", false, Rule::new(old, class_id)),
        ("match only", false, Rule::new(cfg, class_id)),
        ("context, any", true, Rule::new(&cfg.any_person(), class_id)),
        ("ctx+match", true, Rule::new(&no_strong, class_id)),
        ("after", true, Rule::new(cfg, class_id)),
    ]
}

/// One category's figures.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub samples: usize,
    /// Per rule.
    pub confirmed: Vec<usize>,
    pub bytes_before: usize,
    pub bytes_after: usize,
}

/// Confirmed count per rule, per category and per group (kind `(all)`).
pub struct Tally {
    pub names: Vec<&'static str>,
    pub rows: BTreeMap<(Group, &'static str), Row>,
}

impl Tally {
    pub fn new(outcomes: &[Outcome], rules: &[(&'static str, bool, Rule)]) -> Self {
        let mut rows: BTreeMap<_, Row> = BTreeMap::new();
        for o in outcomes {
            for key in [(o.group, o.kind), (o.group, "(all)")] {
                let row = rows.entry(key).or_insert_with(|| Row {
                    confirmed: vec![0; rules.len()],
                    ..Row::default()
                });
                row.samples += 1;
                for (i, (_, ctx, rule)) in rules.iter().enumerate() {
                    let seen = if *ctx { &o.after } else { &o.before };
                    row.confirmed[i] += usize::from(seen.judged(rule));
                }
                row.bytes_before += o.before.bytes;
                row.bytes_after += o.after.bytes;
            }
        }
        Self {
            names: rules.iter().map(|r| r.0).collect(),
            rows,
        }
    }

    /// Share of `group`'s samples that rule `name` confirmed.
    pub fn rate(&self, group: Group, name: &str) -> f64 {
        let i = self.names.iter().position(|n| *n == name).expect("rule");
        self.rows
            .get(&(group, "(all)"))
            .map_or(0.0, |r| r.confirmed[i] as f64 / r.samples.max(1) as f64)
    }

    /// Samples of `group`.
    pub fn count(&self, group: Group) -> usize {
        self.rows.get(&(group, "(all)")).map_or(0, |r| r.samples)
    }

    pub fn print(&self) {
        let mut head = format!("{:<9} {:<12} {:>4}", "group", "category", "n");
        for n in &self.names {
            head += &format!(" {n:>14}");
        }
        println!("{head} {:>9} {:>9}", "B before", "B after");
        for ((g, kind), r) in &self.rows {
            let n = r.samples;
            let mut line = format!("{:<9} {kind:<12} {n:>4}", format!("{g:?}"));
            for k in &r.confirmed {
                line += &format!(" {:>5.1}% {k:>3}/{n:<3}", 100.0 * *k as f64 / n as f64);
            }
            println!("{line} {:>9} {:>9}", r.bytes_before / n, r.bytes_after / n);
        }
    }
}
