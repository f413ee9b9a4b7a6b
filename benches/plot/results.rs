//! The machine-readable medians of one `benches/load.sh` run, as it writes them to
//! `benches/results/<stamp>.tsv`.
//!
//! The format: lines starting with `#` are notes about the run (`# key: value`: the stamp, the
//! machine, the versions); the first other line is the header, naming the tab-separated
//! columns; each further line is one scenario × server. Columns are found by name, so a later
//! `load.sh` may add some; `scenario` and `server` are required, and so is every column in
//! [`Metric::ALL`]. A figure that was not measured (no latency from the handshake client, a
//! failed run) is `-`. Blank lines are ignored. Anything else is an error naming the line, so
//! a truncated or hand-edited file is never charted silently wrong.

use std::collections::HashMap;

/// One figure a run measures for each scenario × server, and a chart of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Metric {
    /// Requests per second (higher is better).
    Rps,
    /// Server CPU time (user + system, every process of the server) per request, in µs.
    CpuUs,
    /// 99th percentile latency, in milliseconds.
    P99Ms,
}

impl Metric {
    /// Every metric, in the order the charts are written.
    pub(crate) const ALL: [Metric; 3] = [Metric::Rps, Metric::CpuUs, Metric::P99Ms];

    /// The TSV column holding this metric.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Metric::Rps => "rps",
            Metric::CpuUs => "cpu_us_per_req",
            Metric::P99Ms => "p99_ms",
        }
    }
}

/// One row: the medians of one server in one scenario.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    /// The scenario (`s1`, `s6u`, `gz`, ...).
    pub(crate) scenario: String,
    /// The server (`vigie`, `nginx`, `pingora`, `origin`).
    pub(crate) server: String,
    values: HashMap<String, f64>,
}

impl Row {
    /// The row's value of a metric, `None` when it was not measured.
    pub(crate) fn get(&self, metric: Metric) -> Option<f64> {
        self.values.get(metric.column()).copied()
    }
}

/// A whole results file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Run {
    /// The `# key: value` notes, in file order.
    pub(crate) notes: Vec<(String, String)>,
    /// The rows, in file order.
    pub(crate) rows: Vec<Row>,
}

impl Run {
    /// The value of a note, if the file has it.
    pub(crate) fn note(&self, key: &str) -> Option<&str> {
        self.notes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `metric` for `scenario` and `server`.
    pub(crate) fn value(&self, scenario: &str, server: &str, metric: Metric) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.scenario == scenario && r.server == server)
            .and_then(|r| r.get(metric))
    }

    /// Scenarios in the order they first appear.
    pub(crate) fn scenarios(&self) -> Vec<&str> {
        first_seen(self.rows.iter().map(|r| r.scenario.as_str()))
    }

    /// Servers in the order they first appear.
    pub(crate) fn servers(&self) -> Vec<&str> {
        first_seen(self.rows.iter().map(|r| r.server.as_str()))
    }
}

fn first_seen<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for n in names {
        if !seen.contains(&n) {
            seen.push(n);
        }
    }
    seen
}

/// Why a results file was refused. Lines are numbered from 1.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum ParseError {
    /// Nothing but notes and blank lines.
    #[error("no header line (expected tab-separated columns such as `scenario\tserver\trps`)")]
    NoHeader,
    /// The header lacks a column the charts need.
    #[error("line {line}: the header has no `{column}` column")]
    MissingColumn {
        /// The header's line.
        line: usize,
        /// The column's name.
        column: &'static str,
    },
    /// The header names a column twice.
    #[error("line {line}: the header names `{column}` twice")]
    DuplicateColumn {
        /// The header's line.
        line: usize,
        /// The column's name.
        column: String,
    },
    /// A row with more or fewer fields than the header has columns.
    #[error("line {line}: {found} fields, the header has {expected} columns")]
    FieldCount {
        /// The row's line.
        line: usize,
        /// Fields in the row.
        found: usize,
        /// Columns in the header.
        expected: usize,
    },
    /// An empty scenario or server name.
    #[error("line {line}: empty `{column}`")]
    EmptyName {
        /// The row's line.
        line: usize,
        /// `scenario` or `server`.
        column: &'static str,
    },
    /// A value that is neither a finite non-negative number nor `-`.
    #[error("line {line}, column `{column}`: `{value}` is not a number (or `-` for not measured)")]
    BadNumber {
        /// The row's line.
        line: usize,
        /// The column's name.
        column: String,
        /// The value as written.
        value: String,
    },
    /// The same scenario and server twice.
    #[error("line {line}: {scenario} / {server} is already on line {first}")]
    DuplicateRow {
        /// The second row's line.
        line: usize,
        /// The first row's line.
        first: usize,
        /// The scenario.
        scenario: String,
        /// The server.
        server: String,
    },
    /// A header but no rows.
    #[error("no rows after the header")]
    NoRows,
}

/// Parses a results file (see the module's doc for the format).
pub(crate) fn parse(text: &str) -> Result<Run, ParseError> {
    let mut notes = Vec::new();
    let mut header: Option<(usize, Vec<&str>)> = None;
    let mut rows = Vec::new();
    let mut lines_of: HashMap<(String, String), usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(note) = line.strip_prefix('#') {
            if let Some((k, v)) = note.split_once(':') {
                notes.push((k.trim().to_string(), v.trim().to_string()));
            }
            continue;
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let Some((_, columns)) = &header else {
            check_header(number, &fields)?;
            header = Some((number, fields));
            continue;
        };
        let row = parse_row(number, columns, &fields)?;
        let key = (row.scenario.clone(), row.server.clone());
        if let Some(&first) = lines_of.get(&key) {
            return Err(ParseError::DuplicateRow {
                line: number,
                first,
                scenario: key.0,
                server: key.1,
            });
        }
        lines_of.insert(key, number);
        rows.push(row);
    }
    if header.is_none() {
        return Err(ParseError::NoHeader);
    }
    if rows.is_empty() {
        return Err(ParseError::NoRows);
    }
    Ok(Run { notes, rows })
}

fn check_header(line: usize, columns: &[&str]) -> Result<(), ParseError> {
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].contains(c) {
            return Err(ParseError::DuplicateColumn {
                line,
                column: c.to_string(),
            });
        }
    }
    let needed = ["scenario", "server"]
        .into_iter()
        .chain(Metric::ALL.map(Metric::column));
    for column in needed {
        if !columns.contains(&column) {
            return Err(ParseError::MissingColumn { line, column });
        }
    }
    Ok(())
}

fn parse_row(line: usize, columns: &[&str], fields: &[&str]) -> Result<Row, ParseError> {
    if fields.len() != columns.len() {
        return Err(ParseError::FieldCount {
            line,
            found: fields.len(),
            expected: columns.len(),
        });
    }
    let mut scenario = "";
    let mut server = "";
    let mut values = HashMap::new();
    for (&column, &value) in columns.iter().zip(fields) {
        match column {
            "scenario" => scenario = value,
            "server" => server = value,
            _ if value == "-" => {}
            _ => {
                let bad = || ParseError::BadNumber {
                    line,
                    column: column.to_string(),
                    value: value.to_string(),
                };
                let n: f64 = value.parse().map_err(|_| bad())?;
                if !n.is_finite() || n < 0.0 {
                    return Err(bad());
                }
                values.insert(column.to_string(), n);
            }
        }
    }
    for (name, column) in [(scenario, "scenario"), (server, "server")] {
        if name.is_empty() {
            return Err(ParseError::EmptyName { line, column });
        }
    }
    Ok(Row {
        scenario: scenario.to_string(),
        server: server.to_string(),
        values,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEADER: &str = "scenario\tserver\trps\tp50_ms\tp99_ms\tcpu_us_per_req\trss_growth_kib";

    fn file(rows: &[&str]) -> String {
        let mut s = format!("# stamp: 20261201T1507Z\n# machine: AMD EPYC, 2 cores\n{HEADER}\n");
        for r in rows {
            s.push_str(r);
            s.push('\n');
        }
        s
    }

    #[test]
    fn a_good_file_parses_with_its_notes_and_missing_figures() {
        let run = parse(&file(&[
            "s1\tvigie\t11633.53\t5.30\t10.42\t111.8\t2772",
            "s1\tnginx\t27497.07\t2.12\t5.50\t37.1\t0",
            "",
            "s2\tvigie\t2090.4\t-\t-\t413.0\t36",
        ]))
        .unwrap();
        assert_eq!(run.note("stamp"), Some("20261201T1507Z"));
        assert_eq!(run.note("machine"), Some("AMD EPYC, 2 cores"));
        assert_eq!(run.scenarios(), ["s1", "s2"]);
        assert_eq!(run.servers(), ["vigie", "nginx"]);
        assert_eq!(run.value("s1", "nginx", Metric::Rps), Some(27497.07));
        assert_eq!(run.value("s1", "vigie", Metric::CpuUs), Some(111.8));
        assert_eq!(run.value("s2", "vigie", Metric::P99Ms), None);
        assert_eq!(run.value("s2", "nginx", Metric::Rps), None);
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let run =
            parse("p99_ms\tcpu_us_per_req\tserver\trps\tscenario\n4\t50\tvigie\t9\ts4\n").unwrap();
        assert_eq!(run.value("s4", "vigie", Metric::P99Ms), Some(4.0));
        assert_eq!(run.value("s4", "vigie", Metric::Rps), Some(9.0));
    }

    #[test]
    fn bad_files_are_refused_with_the_line_and_the_reason() {
        let cases: &[(&str, &str)] = &[
            (
                "# only notes\n\n",
                "no header line (expected tab-separated columns such as `scenario\tserver\trps`)",
            ),
            (&file(&[]), "no rows after the header"),
            (
                "scenario\tserver\trps\tp99_ms\n",
                "line 1: the header has no `cpu_us_per_req` column",
            ),
            (
                "scenario\tserver\trps\trps\tp99_ms\tcpu_us_per_req\n",
                "line 1: the header names `rps` twice",
            ),
            (
                &file(&["s1\tvigie\t1\t2\t3"]),
                "line 4: 5 fields, the header has 7 columns",
            ),
            (
                &file(&["s1\tvigie\tERR\t2\t3\t4\t5"]),
                "line 4, column `rps`: `ERR` is not a number (or `-` for not measured)",
            ),
            (
                &file(&["s1\tvigie\t1\t2ms\t3\t4\t5"]),
                "line 4, column `p50_ms`: `2ms` is not a number (or `-` for not measured)",
            ),
            (
                &file(&["s1\tvigie\t1\t2\t3\t-4\t5"]),
                "line 4, column `cpu_us_per_req`: `-4` is not a number (or `-` for not measured)",
            ),
            (
                &file(&["s1\tvigie\tNaN\t2\t3\t4\t5"]),
                "line 4, column `rps`: `NaN` is not a number (or `-` for not measured)",
            ),
            (
                &file(&["\tvigie\t1\t2\t3\t4\t5"]),
                "line 4: empty `scenario`",
            ),
            (
                &file(&["s1\tvigie\t1\t2\t3\t4\t5", "s1\tvigie\t1\t2\t3\t4\t5"]),
                "line 5: s1 / vigie is already on line 4",
            ),
        ];
        for (text, message) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.to_string(), *message, "for {text:?}");
        }
    }

    #[test]
    fn a_space_separated_file_is_refused_not_misread() {
        let err = parse("scenario server rps p99_ms cpu_us_per_req\n").unwrap_err();
        assert_eq!(
            err,
            ParseError::MissingColumn {
                line: 1,
                column: "scenario"
            }
        );
    }
}
