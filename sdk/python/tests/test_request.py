"""Request helpers: query, args, form, JSON (properties, parsed once), headers, prefix,
body streaming."""

import copy
import io
import json as std_json
import unittest

from wasmount import App, FormData, HTTPError, MultiDict, Request, json
from wasmount.testing import Client


def echo_app() -> App:
    app = App()

    @app.route("/echo", methods=["GET", "POST", "PUT"])
    def echo(request):
        return json({
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "args": request.args,
            "prefix": request.prefix,
            "link": request.url_for("items", page=2),
            "host": request.host,
            "scheme": request.scheme,
            "remote": request.remote_addr,
            "agent": request.headers.get("User-Agent"),
        })

    @app.get("/items")
    def items(request):
        return json([])

    @app.post("/form")
    def form(request):
        fields = request.form
        return json({"name": fields["name"], "tags": fields.getlist("tag"),
                     "empty": fields.get("empty"), "missing": fields.get("missing")})

    @app.post("/json")
    def body_json(request):
        return json({"got": request.json})

    @app.post("/text")
    def body_text(request):
        return json({"text": request.text, "size": len(request.body)})

    return app


class RequestTest(unittest.TestCase):
    def setUp(self):
        self.client = Client(echo_app(), prefix="/myapp/", host="example.org:8443",
                             scheme="https", remote_addr="10.0.0.7")

    def test_query_args_headers_prefix(self):
        got = self.client.get("/echo?a=1&a=2&b=&c=%C3%A9", headers={"user-agent": "tests"}).json()
        self.assertEqual(got["method"], "GET")
        self.assertEqual(got["path"], "/echo")
        self.assertEqual(got["query"], {"a": ["1", "2"], "b": [""], "c": ["é"]})
        self.assertEqual(got["args"], {"a": "1", "b": "", "c": "é"})
        self.assertEqual(got["prefix"], "/myapp")
        self.assertEqual(got["link"], "/myapp/items?page=2")
        self.assertEqual(got["host"], "example.org:8443")
        self.assertEqual(got["scheme"], "https")
        self.assertEqual(got["remote"], "10.0.0.7")
        self.assertEqual(got["agent"], "tests")

    def test_form(self):
        got = self.client.post("/form", data={"name": "Ada L", "tag": ["x", "y"], "empty": ""})
        self.assertEqual(got.json(), {"name": "Ada L", "tags": ["x", "y"], "empty": "",
                                      "missing": None})

    def test_multipart_form_is_415(self):
        response = self.client.post("/form", data=b"--x--",
                                    headers={"content-type": "multipart/form-data; boundary=x"})
        self.assertEqual(response.status, 415)

    def test_json_body(self):
        self.assertEqual(self.client.post("/json", json={"a": [1, 2]}).json(), {"got": {"a": [1, 2]}})
        # without a content-type JSON is still read
        self.assertEqual(self.client.post("/json", data=b'[1]').json(), {"got": [1]})

    def test_bad_json_bodies_are_json_errors(self):
        empty = self.client.post("/json", data=b"  ", headers={"content-type": "application/json"})
        self.assertEqual(empty.status, 400)
        self.assertEqual(empty.json()["status"], 400)
        self.assertIn("empty", empty.json()["error"])
        broken = self.client.post("/json", data=b"{nope", headers={"content-type": "application/json"})
        self.assertEqual(broken.status, 400)
        self.assertIn("not valid JSON", broken.json()["error"])
        wrong_type = self.client.post("/json", data="hello")
        self.assertEqual(wrong_type.status, 415)
        self.assertEqual(wrong_type.headers["content-type"], "application/json")

    def test_text_uses_the_charset(self):
        body = "café".encode("latin-1")
        got = self.client.post("/text", data=body,
                               headers={"content-type": "text/plain; charset=iso-8859-1"}).json()
        self.assertEqual(got, {"text": "café", "size": 4})
        got = self.client.post("/text", data="naïve").json()
        self.assertEqual(got["text"], "naïve")

    def test_headers_are_case_insensitive_and_keep_repeats(self):
        request = Request("GET", "/", [("X-A", b"1"), ("x-a", b"2"), ("Accept", "text/html")])
        self.assertEqual(request.headers["x-a"], "1")
        self.assertEqual(request.headers.get_all("X-A"), ["1", "2"])
        self.assertIn("ACCEPT", request.headers)
        self.assertEqual(request.headers.get("missing", "d"), "d")

    def test_body_is_read_lazily_once(self):
        stream = io.BytesIO(b"payload")
        request = Request("POST", "/x", [], stream)
        self.assertEqual(stream.tell(), 0)
        self.assertEqual(request.body, b"payload")
        self.assertEqual(request.body, b"payload")

    def test_without_prefix(self):
        request = Request("GET", "/a%20b?x=1")
        self.assertEqual(request.prefix, "")
        self.assertEqual(request.path, "/a b")
        self.assertEqual(request.raw_path, "/a%20b")
        self.assertFalse(request.wants_json)

    def test_args_form_and_json_are_properties_parsed_once(self):
        request = Request("POST", "/?tag=a&tag=b", {"content-type": "application/json"},
                          b'{"n": 1}')
        self.assertIsInstance(request.args, MultiDict)
        self.assertIs(request.args, request.args)
        self.assertEqual(request.args.getlist("tag"), ["a", "b"])
        self.assertEqual(request.json, {"n": 1})
        self.assertIs(request.json, request.json)
        form = Request("POST", "/", {"content-type": "application/x-www-form-urlencoded"},
                       b"name=Ada&tag=x&tag=y")
        self.assertIsInstance(form.form, FormData)
        self.assertIs(form.form, form.form)
        self.assertEqual((form.form["name"], form.form.getlist("tag")), ("Ada", ["x", "y"]))

    def test_a_refused_body_raises_on_every_use(self):
        request = Request("POST", "/", {"content-type": "text/plain"}, b"{}")
        for _ in range(2):
            with self.assertRaises(HTTPError) as raised:
                request.json
            self.assertEqual(raised.exception.status, 415)
        multipart = Request("POST", "/", {"content-type": "multipart/form-data; boundary=x"})
        for _ in range(2):
            with self.assertRaises(HTTPError):
                multipart.form

    def test_args_are_a_read_only_dict_of_first_values(self):
        args = Request("GET", "/?a=1&a=2&b=").args
        self.assertEqual(args, {"a": "1", "b": ""})
        self.assertEqual(args.get("a"), "1")
        self.assertEqual(args.getlist("missing"), [])
        self.assertEqual(Request("GET", "/?a=1&a=2").query, {"a": ["1", "2"]})
        with self.assertRaises(TypeError):
            args["a"] = "3"
        with self.assertRaises(TypeError):
            args.update(a="3")
        copy = dict(args)
        copy["a"] = "3"
        self.assertEqual(args["a"], "1")

    def test_form_data_mapping(self):
        form = FormData.parse("a=1&a=2&b=x+y")
        self.assertEqual(dict(form), {"a": "1", "b": "x y"})
        self.assertEqual(form.getlist("a"), ["1", "2"])
        self.assertEqual(form.lists(), {"a": ["1", "2"], "b": ["x y"]})
        self.assertEqual(std_json.dumps(form), '{"a": "1", "b": "x y"}')
        self.assertEqual(copy.copy(form).getlist("a"), ["1", "2"])
        self.assertEqual(repr(form), "MultiDict({'a': ['1', '2'], 'b': ['x y']})")

    def test_http_error_str(self):
        self.assertEqual(str(HTTPError(418, "teapot")), "418: teapot")
        self.assertEqual(HTTPError(404).message, "not found")


if __name__ == "__main__":
    unittest.main()
