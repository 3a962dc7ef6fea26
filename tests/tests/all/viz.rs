//! The visualization guest served by wasmount: its page, assets, and charts, under any prefix.

use bytes::Bytes;
use http::{Method, StatusCode};
use wasmount_tests::{TestServer, form_urlencode as encode, guests};

const FORM: &[(&str, &str)] = &[("content-type", "application/x-www-form-urlencoded")];

#[tokio::test(flavor = "multi_thread")]
async fn page_and_assets_use_relative_links_under_any_prefix() {
    for base in ["", "/visualizations"] {
        let server = TestServer::start_with(&[("viz", guests::VIZ)], |config| {
            config.base_path = base.into();
        })
        .await;
        let page = server.get(&format!("{base}/viz/")).await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.text();
        assert!(html.contains(r#"href="static/app.css""#), "{html}");
        assert!(html.contains(r#"src="static/app.js""#), "{html}");
        assert!(html.contains(r#"action="plot""#), "{html}");

        let css = server.get(&format!("{base}/viz/static/app.css")).await;
        assert_eq!(css.status, StatusCode::OK);
        assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
        let js = server.get(&format!("{base}/viz/static/app.js")).await;
        assert_eq!(js.header("content-type"), "text/javascript; charset=utf-8");
        assert!(js.text().contains("static/example.tsv"));
        let missing = server.get(&format!("{base}/viz/static/nope.css")).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_posted_table_becomes_a_heatmap_and_a_scatter_plot() {
    let server = TestServer::start(&[("viz", guests::VIZ)]).await;
    let table = "gene\tA\tB\tC\nTP53\t1\t2\t3\nMYC\t4\tNA\t6\n";
    let form = format!(
        "title={}&chart=heatmap&data={}",
        encode("Tiny <data>"),
        encode(table)
    );
    let heatmap = server.send(Method::POST, "/viz/plot", form, FORM).await;
    assert_eq!(heatmap.status, StatusCode::OK, "{}", heatmap.text());
    let html = heatmap.text();
    assert!(html.contains("<h1>Tiny &lt;data&gt;</h1>"), "{html}");
    assert!(
        html.contains("2 rows × 3 columns, values from 1 to 6"),
        "{html}"
    );
    assert_eq!(
        html.matches("<title>").count(),
        1 + 6,
        "page title plus one tooltip per cell"
    );
    assert!(html.contains("TP53 / B: 2"));

    let svg = server
        .send(
            Method::POST,
            "/viz/plot.svg?chart=scatter",
            "id,x,y\np,1,2\nq,3,4\n",
            &[],
        )
        .await;
    assert_eq!(svg.status, StatusCode::OK);
    assert_eq!(svg.header("content-type"), "image/svg+xml");
    assert!(svg.text().starts_with("<svg"));
    assert_eq!(svg.text().matches("class=\"point\"").count(), 2);

    let example = server.get("/viz/example").await;
    assert_eq!(example.status, StatusCode::OK);
    assert!(
        example.text().contains("12 rows × 8 columns"),
        "{}",
        example.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tables_get_400_with_the_reason() {
    let server = TestServer::start(&[("viz", guests::VIZ)]).await;
    let form = format!("chart=heatmap&data={}", encode("g,a\nr,oops\n"));
    let page = server.send(Method::POST, "/viz/plot", form, FORM).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.text()
            .contains("line 2, column `a`: `oops` is not a number"),
        "{}",
        page.text()
    );

    let svg = server
        .send(Method::POST, "/viz/plot.svg?chart=pie", "g,a\nr,1\n", &[])
        .await;
    assert_eq!(svg.status, StatusCode::BAD_REQUEST);
    assert!(svg.text().contains("unknown chart `pie`"));

    let empty = server
        .send(Method::POST, "/viz/plot.svg", Bytes::new(), &[])
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        server.get("/viz/").await.status,
        StatusCode::OK,
        "the app still serves"
    );
}
