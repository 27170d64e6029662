//! Alerts against the visits of a clip (when people came into view and left): time from coming
//! into view to the alert, alerts per visit, and how long after the leaving the alert ended. The
//! demo prints it for a clip with a `.visits` file beside its name in `tests/fixtures/`.
//!
//! A `.visits` file holds one visit per line, `start_s end_s` in stream seconds; `#` comments.

use std::path::Path;

/// One visit, stream seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Visit {
    pub start_s: f64,
    pub end_s: f64,
}

/// What the alerts did for one visit.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitReport {
    pub visit: Visit,
    /// Alerts whose first crop was captured during the visit.
    pub alerts: usize,
    /// From the start of the visit to the first alert's `new`, seconds.
    pub to_alert_s: Option<f64>,
    /// From the end of the visit to the last of its alerts' `end`, seconds (negative: before).
    pub end_lag_s: Option<f64>,
}

/// Reads a `.visits` file.
pub fn read(path: &Path) -> std::io::Result<Vec<Visit>> {
    let text = std::fs::read_to_string(path)?;
    let bad = |n: usize, l: &str| {
        std::io::Error::other(format!(
            "{}:{n}: {l:?} is not `start_s end_s`",
            path.display()
        ))
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let v: Vec<f64> = l
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| bad(n + 1, line))?;
        match v[..] {
            [start_s, end_s] if start_s < end_s => out.push(Visit { start_s, end_s }),
            _ => return Err(bad(n + 1, line)),
        }
    }
    Ok(out)
}

/// The `.visits` file of `clip` in `fixtures`, when there is one.
pub fn for_clip(fixtures: &Path, clip: &Path) -> Option<std::path::PathBuf> {
    let stem = clip.file_stem()?;
    let p = fixtures.join(stem).with_extension("visits");
    p.is_file().then_some(p)
}

/// Alert events (JSON) against `visits`; `zero_us` is the UTC of stream time 0. An alert belongs
/// to the visit during which (within a second) its first crop was captured.
pub fn report(visits: &[Visit], events: &[serde_json::Value], zero_us: i64) -> Vec<VisitReport> {
    let s = |e: &serde_json::Value, k: &str| (e[k].as_i64().unwrap_or(0) - zero_us) as f64 / 1e6;
    visits
        .iter()
        .map(|v| {
            let news: Vec<&serde_json::Value> = events
                .iter()
                .filter(|e| e["type"] == "new")
                .filter(|e| (v.start_s - 1.0..=v.end_s + 1.0).contains(&s(e, "capture_time_us")))
                .collect();
            let ids: Vec<&str> = news.iter().filter_map(|e| e["alert_id"].as_str()).collect();
            let first = news
                .iter()
                .map(|e| s(e, "cloud_decision_time_us"))
                .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t))));
            let last_end = events
                .iter()
                .filter(|e| e["type"] == "end")
                .filter(|e| e["alert_id"].as_str().is_some_and(|id| ids.contains(&id)))
                .map(|e| s(e, "cloud_decision_time_us"))
                .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
            VisitReport {
                visit: *v,
                alerts: news.len(),
                to_alert_s: first.map(|t| t - v.start_s),
                end_lag_s: last_end.map(|t| t - v.end_s),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const S: i64 = 1_000_000;

    fn ev(kind: &str, id: &str, capture_s: f64, decided_s: f64) -> serde_json::Value {
        json!({"type": kind, "alert_id": id,
               "capture_time_us": (capture_s * 1e6) as i64 + 100 * S,
               "cloud_decision_time_us": (decided_s * 1e6) as i64 + 100 * S})
    }

    #[test]
    fn alerts_are_matched_to_their_visits() {
        let visits = [
            Visit {
                start_s: 5.0,
                end_s: 10.0,
            },
            Visit {
                start_s: 20.0,
                end_s: 30.0,
            },
            Visit {
                start_s: 40.0,
                end_s: 41.0,
            },
        ];
        let events = [
            ev("new", "a", 5.5, 6.5),
            ev("update", "a", 7.0, 7.5),
            ev("end", "a", 9.0, 12.0),
            ev("new", "b", 21.0, 21.4),
            ev("end", "b", 22.0, 30.0),
            ev("new", "c", 25.0, 25.5),
            ev("end", "c", 28.0, 31.5),
        ];
        let r = report(&visits, &events, 100 * S);
        assert_eq!(
            (r[0].alerts, r[0].to_alert_s, r[0].end_lag_s),
            (1, Some(1.5), Some(2.0))
        );
        assert_eq!(r[1].alerts, 2, "two alerts for one visit");
        assert!((r[1].to_alert_s.unwrap_or(0.0) - 1.4).abs() < 1e-9);
        assert_eq!(r[1].end_lag_s, Some(1.5), "the last of its alerts");
        assert_eq!((r[2].alerts, r[2].to_alert_s), (0, None), "missed");
    }

    #[test]
    fn visits_files_are_read_and_bad_lines_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.visits");
        std::fs::write(&p, "# visits\n6.5 19.0\n\n23 44.5 # second\n").expect("write");
        assert_eq!(
            read(&p).expect("reads"),
            vec![
                Visit {
                    start_s: 6.5,
                    end_s: 19.0
                },
                Visit {
                    start_s: 23.0,
                    end_s: 44.5
                }
            ]
        );
        std::fs::write(&p, "6.5\n").expect("write");
        let e = read(&p).expect_err("bad");
        assert!(e.to_string().contains("x.visits:1"), "{e}");
        assert_eq!(
            for_clip(dir.path(), Path::new("/clips/x.mp4")),
            Some(p.clone())
        );
        assert_eq!(for_clip(dir.path(), Path::new("/clips/y.mp4")), None);
    }
}
