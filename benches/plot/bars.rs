//! Drawing one chart with plotters' SVG backend: horizontal bars grouped by scenario, the x
//! axis the ratio to nginx (a line marks 1), each bar labelled, a legend and the run's note
//! underneath. Text stays text in the SVG (the viewer picks the font), so nothing here needs a
//! font file or a system library.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::chart::{Figures, Spec, REFERENCE};

/// Width of a chart, in pixels.
const WIDTH: u32 = 960;
/// Height of the legend and the note's first line under the plot, and of each further line.
const FOOTER: u32 = 52;
const NOTE_LINE: u32 = 18;
/// Height of one bar, in pixels, and the space between groups.
const BAR: u32 = 16;
const GAP: u32 = 14;

/// The colour of `server`'s bars; `index` (its place among the charted servers) tells apart
/// servers without a colour of their own.
pub(crate) fn color(server: &str, index: usize) -> RGBColor {
    match server {
        "vigie" => RGBColor(0x1f, 0x77, 0xb4),
        REFERENCE => RGBColor(0x2c, 0xa0, 0x2c),
        "pingora" => RGBColor(0xff, 0x7f, 0x0e),
        _ => [RGBColor(0x94, 0x67, 0xbd), RGBColor(0x8c, 0x56, 0x4b)][index % 2],
    }
}

/// The SVG text of the chart of `figures`, or plotters' error as text. `footnote` is one or
/// more lines printed under the legend.
pub(crate) fn render(figures: &Figures, spec: &Spec, footnote: &str) -> Result<String, String> {
    let groups = figures.groups.len() as u32;
    let servers = figures.servers.len() as u32;
    let footer = FOOTER + NOTE_LINE * footnote.lines().count().saturating_sub(1) as u32;
    let height = 100 + footer + groups * (BAR * servers + GAP);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (plot, foot) = root.split_vertically(height - footer);
        draw_bars(&plot, figures, spec).map_err(|e| e.to_string())?;
        draw_footer(&foot, figures, footnote).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    figures: &Figures,
    spec: &Spec,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let n = figures.groups.len();
    let k = figures.servers.len();
    let longest = figures
        .groups
        .iter()
        .flat_map(|g| g.values.iter().flatten().map(move |v| v / g.reference))
        .fold(1.0, f64::max);
    // Room right of the longest bar for its label.
    let x_max = longest * 1.5;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} relative to nginx ({})", spec.title, spec.better),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, Slots(n))?;
    // Slot n-1 is the first scenario, so the file's order reads top to bottom.
    let scenario = |y: &f64| {
        let i = (n as f64 - 1.0 - y.round()).max(0.0) as usize;
        figures
            .groups
            .get(i)
            .map_or_else(String::new, |g| g.scenario.to_string())
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .max_light_lines(1)
        .x_desc("figure ÷ nginx's figure in the same scenario (nginx = 1)")
        .x_label_formatter(&|x| format!("{x:.1}×"))
        .y_label_formatter(&scenario)
        .label_style(("sans-serif", 15))
        .draw()?;
    let top = n as f64 - 0.5;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, -0.5), (1.0, top)],
        BLACK.mix(0.6).stroke_width(1),
    )))?;
    let h = 0.8 / k as f64;
    let label = ("sans-serif", 13)
        .into_font()
        .into_text_style(area)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (j, &server) in figures.servers.iter().enumerate() {
        let fill = color(server, j);
        // (centre on the y axis, ratio, figure) of each of this server's bars.
        let bars: Vec<(f64, f64, f64)> = figures
            .groups
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let v = g.values[j]?;
                let centre = (n - 1 - i) as f64 + 0.4 - (j as f64 + 0.5) * h;
                Some((centre, v / g.reference, v))
            })
            .collect();
        chart.draw_series(bars.iter().map(|&(c, ratio, _)| {
            Rectangle::new([(0.0, c - h * 0.42), (ratio, c + h * 0.42)], fill.filled())
        }))?;
        chart.draw_series(bars.iter().map(|&(c, ratio, v)| {
            let text = if server == REFERENCE {
                format!("{} {}", figure(v), spec.unit)
            } else {
                format!("{ratio:.2}× · {} {}", figure(v), spec.unit)
            };
            Text::new(text, (ratio + x_max * 0.006, c), label.clone())
        }))?;
    }
    Ok(())
}

fn draw_footer<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    figures: &Figures,
    footnote: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut x = 72;
    for (j, &server) in figures.servers.iter().enumerate() {
        area.draw(&Rectangle::new(
            [(x, 4), (x + 16, 18)],
            color(server, j).filled(),
        ))?;
        area.draw(&Text::new(
            server.to_string(),
            (x + 22, 4),
            ("sans-serif", 15),
        ))?;
        x += 48 + 9 * server.chars().count() as i32;
    }
    for (i, line) in footnote.lines().enumerate() {
        let y = 30 + NOTE_LINE as i32 * i as i32;
        area.draw(&Text::new(line.to_string(), (12, y), ("sans-serif", 13)))?;
    }
    Ok(())
}

/// A figure as the labels print it: a whole number with thousands separated from 1,000, at
/// most one decimal from 100, at most two below (`27,497`, `111.8`, `413`, `37.1`, `24.84`).
fn figure(v: f64) -> String {
    if v >= 1000.0 {
        let digits = format!("{v:.0}");
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        let fixed = if v >= 100.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        };
        fixed
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The y axis: one slot per scenario, centred on 0, 1, 2, ..., with a tick (and so a label)
/// at each centre and nowhere else. (plotters' `with_key_points` would do, but it opts out of
/// the default label formatting that `configure_mesh` requires.)
struct Slots(usize);

impl Ranged for Slots {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let Range { start, end } = self.range();
        let share = (value - start) / (end - start);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        (0..self.0).map(|i| i as f64).collect()
    }

    fn range(&self) -> Range<f64> {
        -0.5..self.0 as f64 - 0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_like_the_tables() {
        assert_eq!(figure(27_497.07), "27,497");
        assert_eq!(figure(1_090.0), "1,090");
        assert_eq!(figure(111.84), "111.8");
        assert_eq!(figure(413.0), "413");
        assert_eq!(figure(37.1), "37.1");
        assert_eq!(figure(24.84), "24.84");
        assert_eq!(figure(5.5), "5.5");
        assert_eq!(figure(0.004), "0");
    }
}
