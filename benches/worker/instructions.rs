//! Instructions per message under callgrind: a cost count that does not depend on a noisy machine, and the
//! regression check that `cargo bench --bench worker` runs (`--instructions` runs only this).
//!
//! Each case runs the worker process under `valgrind --tool=callgrind --instr-atstart=no`; instrumentation is
//! switched on and zeroed after the warm-up and dumped at the end of the measured part (see `Profiler`), so the
//! count covers every thread of the worker for the measured messages only. Brokers: librdkafka's mock cluster in
//! the bench process (no disk, no JVM: the worker's instructions do not depend on the broker, and the mock keeps
//! the run short). The count of a case is divided by its messages (Produce) or records (Consume).
//!
//! The baseline is `benches/instructions.json`; a count more than [`TOLERANCE`] above its baseline fails the run
//! (exit 1). `--update-baseline` writes the counts of this run as the new baseline (after an improvement).

use std::path::{Path, PathBuf};

use lapin::Connection;
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};

use super::{Shape, bench_topic, consume_case, fill_topic, produce_case, set_wrap};

/// How much worse than the baseline a count may be before the check fails (callgrind counts repeat within a
/// few per cent here: background threads tick with wall time, which valgrind stretches).
pub const TOLERANCE: f64 = 0.10;

const BASELINE: &str = "benches/instructions.json";

/// The counts issue #18 started from (session 5's profile), for the "halved" column. The 100-record count was
/// taken before trace headers existed (issue 17 later put five on every record by default), so the same message
/// without them (`traceHeaders` off) is counted too, against the same start.
const START: [(&str, f64); 4] = [
    ("produce 1 record/message", 294_000.0),
    ("produce 100 records/message", 2_590_000.0),
    ("consume 1 record/message", 137_000.0),
    ("produce 100 records/message, traceHeaders off", 2_590_000.0),
];

/// One measured count.
struct Count {
    case: &'static str,
    per_unit: f64,
}

/// The `summary:`/`totals:` event count of a callgrind dump (the first event is `Ir`).
fn dump_total(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .filter_map(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .max_by(f64::total_cmp)
}

/// The dump of the measured part written under `dir` for files named `name.<pid>.<n>`.
fn measured_dump(dir: &Path, name: &str) -> PathBuf {
    let dumps: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(&format!("{name}.")) && f.ends_with(".1"))
        })
        .collect();
    assert_eq!(
        dumps.len(),
        1,
        "one callgrind dump of the measured part of {name} in {}",
        dir.display()
    );
    dumps.into_iter().next().unwrap()
}

/// Runs one case under callgrind; returns its instructions per unit.
async fn measure<F: std::future::Future<Output = super::Row>>(
    dir: &Path,
    name: &str,
    units: impl Fn(&super::Row) -> usize,
    run: impl FnOnce() -> F,
) -> f64 {
    set_wrap(Some(format!(
        "valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file={}/{name}.%p",
        dir.display()
    )));
    let row = run().await;
    set_wrap(None);
    let n = units(&row);
    assert!(n > 0, "{name}: nothing measured");
    let total = dump_total(&measured_dump(dir, name)).expect("callgrind totals");
    #[allow(clippy::cast_precision_loss)]
    let per = total / n as f64;
    per
}

/// Measures the three counts, prints them beside the baseline, and returns whether every count is within
/// [`TOLERANCE`] of it (or writes the baseline with `update`).
pub async fn check(conn: &Connection, update: bool) -> bool {
    // `BENCH_CALLGRIND_DIR=DIR` keeps the dumps there (for `callgrind_annotate`); by default they are removed.
    let keep = std::env::var_os("BENCH_CALLGRIND_DIR").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kc-callgrind-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).unwrap();
    let mock = MockCluster::new(1).unwrap();
    let brokers = mock.bootstrap_servers();
    let mut none = Vec::new();
    let ptopic = bench_topic(Some(&mock), &brokers, "cg-produce", &mut none).await;
    let ctopic = bench_topic(Some(&mock), &brokers, "cg-consume", &mut none).await;
    let records = 2000;
    let (b, t) = (brokers.clone(), ctopic.clone());
    tokio::task::spawn_blocking(move || fill_topic(&b, &t, records))
        .await
        .unwrap();
    let one = Shape {
        n: 1000,
        r: 1,
        prefetch: 64,
        eos: false,
        trace: true,
    };
    let hundred = Shape {
        n: 100,
        r: 100,
        prefetch: 8,
        eos: false,
        trace: true,
    };
    let counts = [
        Count {
            case: START[0].0,
            per_unit: measure(
                &dir,
                "p1",
                |r| r.messages,
                || produce_case(conn, &brokers, &ptopic, ("cg p1", "mock"), one),
            )
            .await,
        },
        Count {
            case: START[1].0,
            per_unit: measure(
                &dir,
                "p100",
                |r| r.messages,
                || produce_case(conn, &brokers, &ptopic, ("cg p100", "mock"), hundred),
            )
            .await,
        },
        Count {
            case: START[3].0,
            per_unit: measure(
                &dir,
                "p100n",
                |r| r.messages,
                || {
                    let plain = Shape {
                        trace: false,
                        ..hundred
                    };
                    produce_case(conn, &brokers, &ptopic, ("cg p100n", "mock"), plain)
                },
            )
            .await,
        },
        Count {
            case: START[2].0,
            per_unit: measure(
                &dir,
                "c1",
                |r| r.records,
                || consume_case(conn, &brokers, &ctopic, "cg c1", "mock", records, 1),
            )
            .await,
        },
    ];
    drop(mock);
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    report(&counts, update)
}

fn report(counts: &[Count], update: bool) -> bool {
    let baseline: Value = std::fs::read_to_string(BASELINE)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({}));
    println!("\ninstructions per message (callgrind, whole worker process, mock cluster):\n");
    println!("| case | issue #18 start | now | now / start | baseline | now / baseline |");
    println!("|---|---|---|---|---|---|");
    let mut ok = true;
    for c in counts {
        let start = START
            .iter()
            .find(|(n, _)| *n == c.case)
            .map_or(f64::NAN, |s| s.1);
        let base = baseline[c.case].as_f64();
        let ratio = base.map(|b| c.per_unit / b);
        let within = ratio.is_none_or(|r| r <= 1.0 + TOLERANCE);
        ok &= within || update;
        println!(
            "| {} | {:.0} k | {:.0} k | {:.2} | {} | {}{} |",
            c.case,
            start / 1000.0,
            c.per_unit / 1000.0,
            c.per_unit / start,
            base.map_or("-".into(), |b| format!("{:.0} k", b / 1000.0)),
            ratio.map_or("-".into(), |r| format!("{r:.3}")),
            if within { "" } else { " **REGRESSION**" }
        );
    }
    if update {
        let map: serde_json::Map<String, Value> = counts
            .iter()
            .map(|c| (c.case.to_owned(), json!(c.per_unit.round())))
            .collect();
        std::fs::write(
            BASELINE,
            serde_json::to_string_pretty(&Value::Object(map)).unwrap() + "\n",
        )
        .unwrap();
        println!("\nbaseline written: {BASELINE}");
    } else if !ok {
        println!(
            "\ninstruction check FAILED: a count is more than {:.0} % above {BASELINE}",
            TOLERANCE * 100.0
        );
    }
    ok
}
