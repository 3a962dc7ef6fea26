"""Tests of wasmount_launcher against a real wasmount server.

Run by `cargo test` (tests/tests/refinery_client.rs starts the server and sets the
environment); by hand:

    WASMOUNT_URL=http://127.0.0.1:8080 WASMOUNT_ADMIN_TOKEN=... \
    WASMOUNT_TEST_VIZ=path/to/viz.wasm python3 -m unittest -v test_wasmount_launcher
"""

import http.server
import os
import tempfile
import threading
import unittest
import urllib.error
import urllib.request

from wasmount_launcher import Launcher, WasmountError

EXPRESSION = "gene\tcontrol\ttreated\nTP53\t1.5\t3.25\nBRCA1\t2\t-1\n"


class DataServer:
    """A plain HTTP server on 127.0.0.1 serving one TSV, as Refinery's media server would."""

    def __init__(self, text):
        body = text.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/tab-separated-values")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode()


class LauncherTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.launcher = Launcher(os.environ["WASMOUNT_URL"], os.environ["WASMOUNT_ADMIN_TOKEN"])
        cls.data = DataServer(EXPRESSION)
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as manifest:
            manifest.write('allowed_outbound_hosts = ["%s"]\n' % cls.data.origin)
        cls.manifest = manifest.name
        report = cls.launcher.upload("heatmap", os.environ["WASMOUNT_TEST_VIZ"],
                                     manifest=cls.manifest)
        assert report["app"]["state"] == "serving", report

    @classmethod
    def tearDownClass(cls):
        cls.data.close()
        os.unlink(cls.manifest)

    def refinery_input(self, file_name):
        return {
            "api_prefix": "http://refinery.example/api/v2/",
            "file_relationships": [self.data.origin + "/media/" + file_name],
            "parameters": [{"name": "title", "value": "Expression of " + file_name,
                            "value_type": "STRING"}],
            "node_info": {},
            "extra_directories": [],
        }

    def test_launch_returns_a_url_that_shows_the_data_at_once(self):
        url = self.launcher.launch("heatmap", self.refinery_input("expression.tsv"))
        status, page = fetch(url)
        self.assertEqual(status, 200)
        self.assertIn("<title>Expression of expression.tsv</title>", page)
        self.assertIn("<th>TP53</th><td>1.5</td><td>3.25</td>", page)
        self.assertIn("<svg", page)

    def test_list_get_and_delete(self):
        url = self.launcher.launch("heatmap", self.refinery_input("a.tsv"), name="dataset-a")
        self.assertTrue(url.endswith("/dataset-a/"), url)
        names = [instance["name"] for instance in self.launcher.list()]
        self.assertIn("dataset-a", names)
        self.assertEqual(self.launcher.get("dataset-a")["input"]["file_relationships"],
                         [self.data.origin + "/media/a.tsv"])
        self.launcher.delete("dataset-a")
        with self.assertRaises(urllib.error.HTTPError) as gone:
            fetch(url)
        self.assertEqual(gone.exception.code, 404)
        self.assertNotIn("dataset-a", [i["name"] for i in self.launcher.list()])

    def test_refusals_raise_with_the_server_s_status_and_message(self):
        with self.assertRaises(WasmountError) as unknown:
            self.launcher.launch("no-such-app", {})
        self.assertEqual(unknown.exception.status, 404)
        self.assertIn("no-such-app", unknown.exception.message)
        self.launcher.launch("heatmap", {}, name="taken")
        with self.assertRaises(WasmountError) as taken:
            self.launcher.launch("heatmap", {}, name="taken")
        self.assertEqual(taken.exception.status, 409)
        with self.assertRaises(WasmountError) as missing:
            self.launcher.delete("never-launched")
        self.assertEqual(missing.exception.status, 404)
        wrong = Launcher(self.launcher.server_url, "wrong-token-wrong-token")
        with self.assertRaises(WasmountError) as denied:
            wrong.list()
        self.assertEqual(denied.exception.status, 401)
        with self.assertRaises(ValueError):
            self.launcher.launch("heatmap")

    def test_input_url_instead_of_input(self):
        url = self.launcher.launch("heatmap", input_url=self.data.origin + "/input.json")
        self.assertEqual(self.launcher.get(url.rstrip("/").rsplit("/", 1)[1])["input_url"],
                         self.data.origin + "/input.json")


if __name__ == "__main__":
    unittest.main()
