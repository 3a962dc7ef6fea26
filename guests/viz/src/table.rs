//! Parsing a TSV or CSV table: a header row, then rows of a label and numbers.

/// Most cells drawn in one chart; past it the SVG would be too large for a browser.
pub const MAX_CELLS: usize = 100_000;

/// A numeric table with labelled rows and columns. Missing values (`""`, `NA`, `NaN`) are NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names, one per numeric column.
    pub columns: Vec<String>,
    /// Row labels (the first cell of each data row).
    pub rows: Vec<String>,
    /// `values[row][column]`.
    pub values: Vec<Vec<f64>>,
}

impl Table {
    /// The smallest and largest finite values, if any.
    pub fn range(&self) -> Option<(f64, f64)> {
        let finite = self
            .values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite());
        finite.fold(None, |range, v| match range {
            None => Some((v, v)),
            Some((low, high)) => Some((low.min(v), high.max(v))),
        })
    }
}

/// Parses tab- or comma-separated text (the separator is taken from the header line).
///
/// # Errors
///
/// A message for the user naming the line and column of what is wrong.
pub fn parse(text: &str) -> Result<Table, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim_end_matches('\r')))
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'));
    let (_, header_line) = lines
        .next()
        .ok_or("the table is empty: paste or upload a TSV or CSV file with a header row")?;
    let separator = if header_line.contains('\t') {
        '\t'
    } else if header_line.contains(',') {
        ','
    } else {
        return Err("the header row has no tab or comma: is this a TSV or CSV file?".into());
    };
    let header = split(header_line, separator);
    let mut table = Table {
        columns: Vec::new(),
        rows: Vec::new(),
        values: Vec::new(),
    };
    for (line_number, line) in lines {
        let cells = split(line, separator);
        if table.columns.is_empty() {
            // The header may or may not have a name over the row-label column.
            table.columns = if header.len() == cells.len() {
                header[1..].to_vec()
            } else if header.len() + 1 == cells.len() {
                header.clone()
            } else {
                return Err(format!(
                    "line {line_number} has {} cells but the header has {}",
                    cells.len(),
                    header.len()
                ));
            };
            if table.columns.is_empty() {
                return Err("the table needs at least one numeric column".into());
            }
        }
        if cells.len() != table.columns.len() + 1 {
            return Err(format!(
                "line {line_number} has {} cells, expected {}",
                cells.len(),
                table.columns.len() + 1
            ));
        }
        let mut values = Vec::with_capacity(table.columns.len());
        for (column, cell) in table.columns.iter().zip(&cells[1..]) {
            values.push(number(cell).ok_or_else(|| {
                format!("line {line_number}, column `{column}`: `{cell}` is not a number")
            })?);
        }
        table.rows.push(cells[0].clone());
        table.values.push(values);
        let cells_so_far = table.rows.len() * table.columns.len();
        if cells_so_far > MAX_CELLS {
            return Err(format!(
                "the table has more than {MAX_CELLS} values; plot a smaller part of it"
            ));
        }
    }
    if table.rows.is_empty() {
        return Err("the table has a header but no data rows".into());
    }
    Ok(table)
}

/// The first `max_rows` rows of `table` as an HTML table (labels escaped, missing values
/// blank), with a note when rows were left out.
pub fn to_html(table: &Table, max_rows: usize) -> String {
    use std::fmt::Write as _;
    let escape = wasmount_sdk::html::escape;
    let mut html = String::from("<table class=\"data\">\n<thead><tr><th></th>");
    for column in &table.columns {
        let _ = write!(html, "<th>{}</th>", escape(column));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for (label, values) in table.rows.iter().zip(&table.values).take(max_rows) {
        let _ = write!(html, "<tr><th>{}</th>", escape(label));
        for value in values {
            if value.is_finite() {
                let _ = write!(html, "<td>{value}</td>");
            } else {
                html.push_str("<td></td>");
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table>\n");
    if table.rows.len() > max_rows {
        let _ = writeln!(
            html,
            "<p>First {max_rows} of {} rows shown.</p>",
            table.rows.len()
        );
    }
    html
}

fn split(line: &str, separator: char) -> Vec<String> {
    line.split(separator)
        .map(|cell| cell.trim().trim_matches('"').to_owned())
        .collect()
}

fn number(cell: &str) -> Option<f64> {
    match cell {
        "" | "NA" | "NaN" | "nan" | "-" => Some(f64::NAN),
        _ => cell.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_with_corner_header() {
        let table = parse("gene\ta\tb\nTP53\t1\t2.5\nBRCA1\tNA\t-3\n").unwrap();
        assert_eq!(table.columns, ["a", "b"]);
        assert_eq!(table.rows, ["TP53", "BRCA1"]);
        assert!(table.values[1][0].is_nan());
        assert_eq!(table.range(), Some((-3.0, 2.5)));
    }

    #[test]
    fn html_table_escapes_labels_and_stops_at_the_row_limit() {
        let table = parse("g,a\n<b>,1\nr2,NA\nr3,3\n").unwrap();
        let html = to_html(&table, 2);
        assert!(html.contains("<th>&lt;b&gt;</th><td>1</td>"), "{html}");
        assert!(html.contains("<th>r2</th><td></td>"), "{html}");
        assert!(
            !html.contains("r3") && html.contains("First 2 of 3 rows"),
            "{html}"
        );
    }

    #[test]
    fn csv_without_corner_header() {
        let table = parse("x,y\nr1,1,2\n").unwrap();
        assert_eq!(table.columns, ["x", "y"]);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(
            parse("a b c\n1 2 3")
                .unwrap_err()
                .contains("no tab or comma")
        );
        assert!(
            parse("g,a\nr,oops")
                .unwrap_err()
                .contains("line 2, column `a`")
        );
        assert!(parse("g,a,b\nr,1").unwrap_err().contains("line 2"));
    }
}
