//! A real visualization app: paste or upload a TSV/CSV table and get a heatmap or a scatter
//! plot drawn as SVG. Launched as an instance (Refinery-style, with `INPUT_JSON` or
//! `INPUT_JSON_URL`), its page instead draws the first data file of the input, fetched over
//! outgoing HTTP (the manifest must allow the data host). Every link is relative, so it works
//! under any mount prefix.
//! Build with `cargo build --release --target wasm32-wasip2` in `guests/`.

mod chart;
mod table;

use wasmount_sdk::input::Input;
use wasmount_sdk::{
    Asset, Ctx, HandlerResult, HttpError, Router, StatusCode, embed_assets, html, response,
};
use wstd::http::{Body, Error, Request, Response};

/// The largest table accepted, in bytes of text.
const MAX_DATA_BYTES: usize = 4 << 20;

static ASSETS: &[Asset] = embed_assets!("static"; "app.css", "app.js", "example.tsv");

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    Router::new()
        .get("/", |_ctx: Ctx| async {
            match Input::from_env()
                .await
                .map_err(|e| HttpError::bad_request(e.0))?
            {
                Some(input) => dataset_page(&input).await,
                None => Ok(response::html(index_page())),
            }
        })
        .post("/plot", plot_form)
        .get("/example", |_ctx: Ctx| async {
            let data = ASSETS
                .iter()
                .find(|a| a.path == "example.tsv")
                .map(|a| a.bytes);
            let text = String::from_utf8_lossy(data.unwrap_or_default());
            plot_page("Example: expression heatmap", "heatmap", &text)
        })
        .post("/plot.svg", plot_svg)
        .assets("/static", ASSETS)
        .serve(request)
        .await
}

async fn plot_form(mut ctx: Ctx) -> HandlerResult {
    check_length(&ctx)?;
    let form = ctx.form().await?;
    let title = form
        .get("title")
        .filter(|t| !t.trim().is_empty())
        .unwrap_or("Your data");
    plot_page(
        title,
        form.get("chart").unwrap_or("heatmap"),
        form.get("data").unwrap_or(""),
    )
}

/// `POST plot.svg?chart=heatmap|scatter` with the table as the body: the chart alone.
async fn plot_svg(mut ctx: Ctx) -> HandlerResult {
    check_length(&ctx)?;
    let chart = ctx
        .query_form()
        .get("chart")
        .unwrap_or("heatmap")
        .to_owned();
    let text = ctx.body_text().await?;
    let table = table::parse(&text).map_err(HttpError::bad_request)?;
    Ok(response::svg(draw(&chart, &table)?))
}

fn check_length(ctx: &Ctx) -> Result<(), HttpError> {
    let length: usize = ctx
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    if length > MAX_DATA_BYTES {
        return Err(HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the table is {length} bytes, limit is {MAX_DATA_BYTES}"),
        ));
    }
    Ok(())
}

fn draw(chart: &str, table: &table::Table) -> Result<String, HttpError> {
    match chart {
        "heatmap" => Ok(chart::heatmap(table)),
        "scatter" => chart::scatter(table).map_err(HttpError::bad_request),
        other => Err(HttpError::bad_request(format!(
            "unknown chart `{other}`: use heatmap or scatter"
        ))),
    }
}

fn plot_page(title: &str, chart: &str, data: &str) -> HandlerResult {
    let table = match table::parse(data) {
        Ok(table) => table,
        Err(message) => {
            return Ok(response::with_status(
                StatusCode::BAD_REQUEST,
                response::html(page(
                    "Cannot plot this table",
                    &format!(
                        "<p class=\"error\">{}</p><p><a href=\"./\">Back</a></p>",
                        html::escape(&message)
                    ),
                )),
            ));
        }
    };
    let svg = draw(chart, &table)?;
    let range = table
        .range()
        .map(|(low, high)| format!(", values from {low} to {high}"))
        .unwrap_or_default();
    let body = format!(
        "<p>{} rows × {} columns{range}. <a href=\"./\">New plot</a></p>\n<figure>{svg}</figure>",
        table.rows.len(),
        table.columns.len(),
    );
    Ok(response::html(page(title, &body)))
}

/// The page of a launched instance: its first data file as a heatmap, then as a table.
async fn dataset_page(input: &Input) -> HandlerResult {
    let Some(url) = input.file_urls().first().copied() else {
        return Err(HttpError::bad_request(
            "the input has no data file in `file_relationships`",
        ));
    };
    let text = wasmount_sdk::input::fetch_text(url)
        .await
        .map_err(|e| HttpError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
    if text.len() > MAX_DATA_BYTES {
        return Err(HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{url} is {} bytes, limit is {MAX_DATA_BYTES}", text.len()),
        ));
    }
    let file_name = url.rsplit('/').next().unwrap_or(url);
    let title = input
        .parameter("title")
        .and_then(|v| v.as_str())
        .unwrap_or(file_name);
    let table = table::parse(&text).map_err(HttpError::bad_request)?;
    let body = format!(
        "<p>{rows} rows × {columns} columns from <code>{source}</code>.</p>\n\
         <figure>{svg}</figure>\n{table}",
        rows = table.rows.len(),
        columns = table.columns.len(),
        source = html::escape(file_name),
        svg = chart::heatmap(&table),
        table = table::to_html(&table, MAX_TABLE_ROWS),
    );
    Ok(response::html(page(title, &body)))
}

/// Rows shown in a dataset's table; the heatmap shows them all.
const MAX_TABLE_ROWS: usize = 200;

fn index_page() -> String {
    page(
        "Plot a table",
        r#"<form method="post" action="plot">
  <label>Title <input name="title" value="My data"></label>
  <label>Chart <select name="chart">
    <option value="heatmap">Heatmap (every value)</option>
    <option value="scatter">Scatter (first two columns)</option>
  </select></label>
  <label>Upload a TSV or CSV file <input type="file" id="file" accept=".tsv,.csv,.txt"></label>
  <label>…or paste it (a header row, then a label and numbers per row)
    <textarea name="data" id="data" rows="14" placeholder="gene&#9;sample1&#9;sample2"></textarea></label>
  <p><button type="button" id="example">Load example</button> <button type="submit">Plot</button></p>
</form>
<p>Or open the <a href="example">example heatmap</a>.</p>"#,
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"static/app.css\"></head>\n\
         <body><main>\n<h1>{title}</h1>\n{body}\n</main>\
         <script src=\"static/app.js\"></script></body></html>\n",
        title = html::escape(title)
    )
}
