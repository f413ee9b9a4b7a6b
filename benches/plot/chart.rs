//! Which figures of a run each chart shows, and writing the charts as SVG files.
//!
//! One chart per metric. Each scenario is a group of horizontal bars, one per server, whose
//! length is the server's figure divided by nginx's in that scenario (nginx's own bar is 1),
//! labelled with that ratio and the absolute figure: the ratios are what one run on a shared
//! machine can be read by, the absolute figures say what was measured. The origin row of a run
//! is a baseline without a proxy, not a contender, so it stays in the TSV and the table but is
//! left out of the charts. A scenario without an nginx figure and at least one other for a
//! metric is left out of that chart (there is nothing to compare); a metric no scenario can
//! show gets no chart.

use std::path::{Path, PathBuf};

use crate::bars;
use crate::results::{Metric, Run};

/// The server every ratio is taken against.
pub(crate) const REFERENCE: &str = "nginx";
/// The baseline without a proxy, left out of the charts.
const BASELINE: &str = "origin";

/// A chart file written by [`write_all`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Written {
    /// The file name inside the output directory (`rps.svg`, ...).
    pub(crate) file: &'static str,
    /// What the chart shows, for an image's alternative text.
    pub(crate) title: String,
}

/// Why charts could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChartError {
    /// plotters failed to draw (it reports its errors as text).
    #[error("drawing {file}: {message}")]
    Draw {
        /// The chart's file name.
        file: &'static str,
        /// plotters' error.
        message: String,
    },
    /// The output directory or a file in it could not be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// How one metric is shown.
pub(crate) struct Spec {
    /// The file name.
    pub(crate) file: &'static str,
    /// The chart's title.
    pub(crate) title: &'static str,
    /// Which way is better.
    pub(crate) better: &'static str,
    /// The unit after an absolute figure.
    pub(crate) unit: &'static str,
}

impl Spec {
    /// The presentation of `metric`.
    pub(crate) fn of(metric: Metric) -> Spec {
        match metric {
            Metric::Rps => Spec {
                file: "rps.svg",
                title: "Requests per second",
                better: "higher is better",
                unit: "req/s",
            },
            Metric::CpuUs => Spec {
                file: "cpu.svg",
                title: "Server CPU per request",
                better: "lower is better",
                unit: "µs",
            },
            Metric::P99Ms => Spec {
                file: "p99.svg",
                title: "p99 latency",
                better: "lower is better",
                unit: "ms",
            },
        }
    }
}

/// One scenario's bars: each charted server's figure, `None` where it has none.
pub(crate) struct Group<'a> {
    /// The scenario.
    pub(crate) scenario: &'a str,
    /// nginx's figure, the denominator of every ratio.
    pub(crate) reference: f64,
    /// Per server of [`Figures::servers`], in that order.
    pub(crate) values: Vec<Option<f64>>,
}

/// What one chart shows.
pub(crate) struct Figures<'a> {
    /// The servers, vigie first, then nginx, then bare pingora, then others in file order.
    pub(crate) servers: Vec<&'a str>,
    /// The scenarios, in file order.
    pub(crate) groups: Vec<Group<'a>>,
}

impl<'a> Figures<'a> {
    /// The figures of `metric` that can be compared to nginx's, `None` if there are none.
    pub(crate) fn of(run: &'a Run, metric: Metric) -> Option<Figures<'a>> {
        let figure = |s: &str, v: &str| run.value(s, v, metric).filter(|&x| x > 0.0);
        let mut servers: Vec<&str> = run
            .servers()
            .into_iter()
            .filter(|&v| v != BASELINE)
            .collect();
        let rank = |v: &str| ["vigie", REFERENCE, "pingora"].iter().position(|&k| k == v);
        servers.sort_by_key(|v| rank(v).unwrap_or(usize::MAX));
        let mut groups: Vec<Group> = run
            .scenarios()
            .into_iter()
            .filter_map(|scenario| {
                let reference = figure(scenario, REFERENCE)?;
                let values: Vec<Option<f64>> =
                    servers.iter().map(|v| figure(scenario, v)).collect();
                let others = servers
                    .iter()
                    .zip(&values)
                    .any(|(&v, x)| v != REFERENCE && x.is_some());
                others.then_some(Group {
                    scenario,
                    reference,
                    values,
                })
            })
            .collect();
        // Drop servers with no bar in any group, keeping each group's values aligned.
        let mut j = 0;
        servers.retain(|_| {
            let used = groups.iter().any(|g| g.values[j].is_some());
            if !used {
                for g in &mut groups {
                    g.values.remove(j);
                }
            } else {
                j += 1;
            }
            used
        });
        (!groups.is_empty()).then_some(Figures { servers, groups })
    }
}

/// Writes one SVG per metric that has figures into `dir` (created if missing), replacing
/// files of the same names, and returns what it wrote in [`Metric::ALL`] order.
pub(crate) fn write_all(run: &Run, dir: &Path) -> Result<Vec<Written>, ChartError> {
    std::fs::create_dir_all(dir).map_err(|source| ChartError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for metric in Metric::ALL {
        let spec = Spec::of(metric);
        let Some(figures) = Figures::of(run, metric) else {
            continue;
        };
        let svg =
            bars::render(&figures, &spec, &footnote(run)).map_err(|message| ChartError::Draw {
                file: spec.file,
                message,
            })?;
        let path = dir.join(spec.file);
        std::fs::write(&path, svg).map_err(|source| ChartError::Write { path, source })?;
        written.push(Written {
            file: spec.file,
            title: format!("{} relative to nginx, {}", spec.title, spec.better),
        });
    }
    Ok(written)
}

/// The lines under a chart: which run, on what machine; then the run's `note`, if any.
fn footnote(run: &Run) -> String {
    let stamp = run.note("stamp").unwrap_or("(no stamp)");
    let mut parts = vec![format!("run {stamp}")];
    parts.extend(
        ["machine", "load"]
            .iter()
            .filter_map(|&k| run.note(k).map(str::to_string)),
    );
    parts.push("benches/load.sh medians".to_string());
    let mut lines = parts.join(" · ");
    if let Some(note) = run.note("note") {
        lines.push('\n');
        lines.push_str(note);
    }
    lines
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::results::parse;

    const RUN: &str = "# stamp: 20261201T1507Z\n# machine: AMD EPYC, 2 cores\n\
        # note: s2 measures no latency\n\
        scenario\tserver\trps\tp50_ms\tp99_ms\tcpu_us_per_req\n\
        s1\tvigie\t11633.53\t5.30\t10.42\t111.8\n\
        s1\tnginx\t27497.07\t2.12\t5.50\t37.1\n\
        s1\tpingora\t13682.98\t4.47\t8.79\t89.3\n\
        s1\torigin\t62120.32\t0.97\t4.27\t14.5\n\
        s2\tvigie\t2090.4\t-\t-\t413.0\n\
        s2\tnginx\t1399.3\t-\t-\t810.4\n\
        s6u\tvigie\t1238.16\t12.19\t24.84\t885.7\n\
        s6u\tnginx\t467.34\t27.18\t81.58\t3256.9\n";

    /// The text of every `<text>` element (plotters writes it on its own line).
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>'))
            .filter_map(|(_, rest)| rest.split_once("</text>"))
            .map(|(inner, _)| inner.trim().to_string())
            .collect()
    }

    fn bars_of(svg: &str, server: &str) -> usize {
        let plotters::style::RGBColor(r, g, b) = bars::color(server, 0);
        let fill = format!("fill=\"#{r:02X}{g:02X}{b:02X}\"");
        svg.to_uppercase().matches(&fill.to_uppercase()).count()
    }

    #[test]
    fn each_metric_gets_a_file_with_its_bars_labels_and_ratios() {
        let run = parse(RUN).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(&run, dir.path()).unwrap();
        let files: Vec<&str> = written.iter().map(|w| w.file).collect();
        assert_eq!(files, ["rps.svg", "cpu.svg", "p99.svg"]);
        assert_eq!(
            written[0].title,
            "Requests per second relative to nginx, higher is better"
        );

        let rps = std::fs::read_to_string(dir.path().join("rps.svg")).unwrap();
        assert!(rps.starts_with("<svg"), "{}", &rps[..80.min(rps.len())]);
        let labels = texts(&rps);
        for t in [
            "s1",
            "s2",
            "s6u",
            "vigie",
            "nginx",
            "pingora",
            "Requests per second relative to nginx (higher is better)",
            // vigie's ratios to nginx with the figure measured, and nginx's own figure.
            "0.42× · 11,634 req/s",
            "1.49× · 2,090 req/s",
            "2.65× · 1,238 req/s",
            "0.50× · 13,683 req/s",
            "27,497 req/s",
        ] {
            assert!(
                labels.iter().any(|x| x == t),
                "rps.svg lacks {t:?} in {labels:?}"
            );
        }
        assert!(labels
            .iter()
            .any(|x| x.starts_with("run 20261201T1507Z · AMD EPYC, 2 cores")));
        assert!(labels.iter().any(|x| x == "s2 measures no latency"));
        // One bar per scenario for vigie and nginx, one (s1) for pingora, plus each legend
        // swatch. The origin is not charted.
        assert_eq!(bars_of(&rps, "vigie"), 3 + 1);
        assert_eq!(bars_of(&rps, "nginx"), 3 + 1);
        assert_eq!(bars_of(&rps, "pingora"), 1 + 1);
        assert!(!labels
            .iter()
            .any(|x| x.contains("origin") || x.contains("62,120")));

        let cpu = texts(&std::fs::read_to_string(dir.path().join("cpu.svg")).unwrap());
        assert!(cpu.iter().any(|x| x == "3.01× · 111.8 µs"), "{cpu:?}");
        assert!(cpu.iter().any(|x| x == "3,257 µs"), "{cpu:?}");
    }

    #[test]
    fn a_scenario_without_the_figure_is_left_out_of_that_chart() {
        let run = parse(RUN).unwrap();
        let figures = Figures::of(&run, Metric::P99Ms).unwrap();
        let scenarios: Vec<&str> = figures.groups.iter().map(|g| g.scenario).collect();
        assert_eq!(scenarios, ["s1", "s6u"], "s2 has no latency figures");
        assert_eq!(figures.servers, ["vigie", "nginx", "pingora"]);
        let svg = bars::render(&figures, &Spec::of(Metric::P99Ms), "run x").unwrap();
        assert_eq!(bars_of(&svg, "vigie"), 2 + 1);
        assert!(texts(&svg).iter().any(|x| x == "0.30× · 24.84 ms"));
        assert!(!texts(&svg).iter().any(|x| x == "s2"));
    }

    #[test]
    fn servers_without_any_bar_are_dropped_and_values_stay_aligned() {
        let run = parse(
            "scenario\tserver\trps\tp99_ms\tcpu_us_per_req\n\
             s1\tpingora\t5\t-\t-\ns1\tvigie\t-\t-\t-\ns1\tnginx\t10\t-\t-\n",
        )
        .unwrap();
        let figures = Figures::of(&run, Metric::Rps).unwrap();
        assert_eq!(figures.servers, ["nginx", "pingora"]);
        assert_eq!(figures.groups[0].values, [Some(10.0), Some(5.0)]);
    }

    #[test]
    fn a_metric_nothing_can_compare_gets_no_chart() {
        // No p99 at all, and CPU only for vigie (no nginx figure to compare with).
        let run = parse(
            "scenario\tserver\trps\tp99_ms\tcpu_us_per_req\ns2\tvigie\t2090\t-\t413\n\
             s2\tnginx\t1399\t-\t-\n",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(&run, dir.path()).unwrap();
        let files: Vec<&str> = written.iter().map(|w| w.file).collect();
        assert_eq!(files, ["rps.svg"]);
        assert!(!dir.path().join("p99.svg").exists());
        assert!(!dir.path().join("cpu.svg").exists());
    }

    #[test]
    fn an_unwritable_directory_is_a_clear_error() {
        let run = parse(RUN).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let target = file.join("charts");
        let err = write_all(&run, &target).unwrap_err();
        let expected = format!("writing {}: ", target.display());
        assert!(err.to_string().starts_with(&expected), "{err}");
    }
}
