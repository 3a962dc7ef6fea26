//! Drawing a [`Table`] as SVG: a heatmap of every value, or a scatter plot of two columns.

use crate::table::Table;
use wasmount_sdk::html::escape;

const PLOT_WIDTH: f64 = 720.0;
const PLOT_HEIGHT: f64 = 480.0;
const LABEL_MARGIN: f64 = 110.0;
const MISSING_COLOR: &str = "#d9d9d9";
/// Viridis, sampled at five points; values are interpolated between them.
const PALETTE: [(f64, f64, f64); 5] = [
    (68.0, 1.0, 84.0),
    (59.0, 82.0, 139.0),
    (33.0, 145.0, 140.0),
    (94.0, 201.0, 98.0),
    (253.0, 231.0, 37.0),
];

/// A heatmap: one cell per value, rows and columns labelled, with a colour legend.
pub fn heatmap(table: &Table) -> String {
    let (low, high) = table.range().unwrap_or((0.0, 1.0));
    let cell_w = (PLOT_WIDTH / table.columns.len() as f64).clamp(2.0, 48.0);
    let cell_h = (PLOT_HEIGHT / table.rows.len() as f64).clamp(2.0, 32.0);
    let width = LABEL_MARGIN + cell_w * table.columns.len() as f64 + 20.0;
    let top = LABEL_MARGIN;
    let grid_bottom = top + cell_h * table.rows.len() as f64;
    let height = grid_bottom + 70.0;
    let mut svg = open_svg(width, height);
    let show_col_labels = cell_w >= 10.0;
    let show_row_labels = cell_h >= 9.0;
    for (c, column) in table.columns.iter().enumerate() {
        if show_col_labels {
            let x = LABEL_MARGIN + cell_w * (c as f64 + 0.5);
            svg += &format!(
                "<text x=\"{x:.1}\" y=\"{y:.1}\" transform=\"rotate(-60 {x:.1} {y:.1})\" \
                 font-size=\"11\">{}</text>\n",
                escape(column),
                y = top - 6.0
            );
        }
    }
    for (r, (label, values)) in table.rows.iter().zip(&table.values).enumerate() {
        let y = top + cell_h * r as f64;
        if show_row_labels {
            svg += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\" \
                 dominant-baseline=\"middle\">{}</text>\n",
                LABEL_MARGIN - 6.0,
                y + cell_h / 2.0,
                escape(label)
            );
        }
        for (c, value) in values.iter().enumerate() {
            svg += &format!(
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{cell_w:.1}\" height=\"{cell_h:.1}\" \
                 fill=\"{}\"><title>{} / {}: {value}</title></rect>\n",
                LABEL_MARGIN + cell_w * c as f64,
                color(*value, low, high),
                escape(label),
                escape(&table.columns[c]),
            );
        }
    }
    svg += &legend(LABEL_MARGIN, grid_bottom + 24.0, low, high);
    svg + "</svg>\n"
}

/// A scatter plot of the first two columns, one point per row, with axes and ticks.
pub fn scatter(table: &Table) -> Result<String, String> {
    if table.columns.len() < 2 {
        return Err("a scatter plot needs two numeric columns (x and y)".into());
    }
    let points: Vec<(f64, f64, &str)> = table
        .rows
        .iter()
        .zip(&table.values)
        .map(|(label, values)| (values[0], values[1], label.as_str()))
        .filter(|(x, y, _)| x.is_finite() && y.is_finite())
        .collect();
    if points.is_empty() {
        return Err("no row has numbers in both of the first two columns".into());
    }
    let (x_low, x_high) = padded_range(points.iter().map(|p| p.0));
    let (y_low, y_high) = padded_range(points.iter().map(|p| p.1));
    let left = 70.0;
    let top = 20.0;
    let width = left + PLOT_WIDTH + 20.0;
    let height = top + PLOT_HEIGHT + 60.0;
    let sx = |x: f64| left + (x - x_low) / (x_high - x_low) * PLOT_WIDTH;
    let sy = |y: f64| top + PLOT_HEIGHT - (y - y_low) / (y_high - y_low) * PLOT_HEIGHT;
    let mut svg = open_svg(width, height);
    svg += &format!(
        "<rect x=\"{left}\" y=\"{top}\" width=\"{PLOT_WIDTH}\" height=\"{PLOT_HEIGHT}\" \
         fill=\"none\" stroke=\"#888\"/>\n"
    );
    for tick in ticks(x_low, x_high) {
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">{}</text>\n",
            sx(tick),
            top + PLOT_HEIGHT + 16.0,
            short(tick)
        );
    }
    for tick in ticks(y_low, y_high) {
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\" \
             dominant-baseline=\"middle\">{}</text>\n",
            left - 6.0,
            sy(tick),
            short(tick)
        );
    }
    svg += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"13\">{}</text>\n\
         <text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\" \
         font-size=\"13\">{}</text>\n",
        left + PLOT_WIDTH / 2.0,
        top + PLOT_HEIGHT + 44.0,
        escape(&table.columns[0]),
        top + PLOT_HEIGHT / 2.0,
        top + PLOT_HEIGHT / 2.0,
        escape(&table.columns[1]),
    );
    for (x, y, label) in &points {
        svg += &format!(
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#3b528b\" \
             fill-opacity=\"0.75\"><title>{}: ({x}, {y})</title></circle>\n",
            sx(*x),
            sy(*y),
            escape(label)
        );
    }
    Ok(svg + "</svg>\n")
}

fn open_svg(width: f64, height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\">\n"
    )
}

fn legend(x: f64, y: f64, low: f64, high: f64) -> String {
    let steps = 40;
    let step_w = 200.0 / steps as f64;
    let mut svg: String = (0..steps)
        .map(|i| {
            let value = low + (high - low) * i as f64 / (steps - 1) as f64;
            format!(
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"12\" fill=\"{}\"/>\n",
                x + step_w * i as f64,
                step_w + 0.5,
                color(value, low, high)
            )
        })
        .collect();
    svg += &format!(
        "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>\n",
        y + 26.0,
        short(low),
        x + 200.0,
        y + 26.0,
        short(high)
    );
    svg
}

/// The palette colour of `value` within `[low, high]`; grey when missing.
fn color(value: f64, low: f64, high: f64) -> String {
    if !value.is_finite() {
        return MISSING_COLOR.to_owned();
    }
    let t = if high > low {
        ((value - low) / (high - low)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let position = t * (PALETTE.len() - 1) as f64;
    let index = (position.floor() as usize).min(PALETTE.len() - 2);
    let frac = position - index as f64;
    let (a, b) = (PALETTE[index], PALETTE[index + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * frac).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = if high > low { (high - low) * 0.05 } else { 1.0 };
    (low - pad, high + pad)
}

/// About five round tick values inside `[low, high]`.
fn ticks(low: f64, high: f64) -> Vec<f64> {
    let raw = (high - low) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(magnitude * 10.0);
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn short(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::parse;

    #[test]
    fn heatmap_has_a_cell_per_value_with_palette_ends() {
        let table = parse("g,a,b\nr1,0,1\nr2,NA,0.5\n").unwrap();
        let svg = heatmap(&table);
        assert_eq!(svg.matches("<title>").count(), 4);
        assert!(
            svg.contains("#440154"),
            "lowest value gets the first palette colour"
        );
        assert!(
            svg.contains("#fde725"),
            "highest value gets the last palette colour"
        );
        assert!(svg.contains(MISSING_COLOR));
    }

    #[test]
    fn scatter_draws_one_point_per_complete_row() {
        let table = parse("id,x,y\np,1,2\nq,3,NA\nr,5,9\n").unwrap();
        let svg = scatter(&table).unwrap();
        assert_eq!(svg.matches("class=\"point\"").count(), 2);
        assert!(scatter(&parse("id,x\np,1\n").unwrap()).is_err());
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    }
}
