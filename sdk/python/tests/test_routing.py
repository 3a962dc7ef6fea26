"""Routing: patterns and parameters, 404, 405 with Allow, HEAD served by GET."""

import unittest

from wasmount import App, Request, html, json, text
from wasmount.testing import Client


def make_app() -> App:
    app = App()

    @app.get("/")
    def index(request):
        return html("<h1>home</h1>")

    @app.get("/items/<id>")
    def item(request, id):
        return json({"id": id, "params": request.params})

    @app.get("/numbers/<int:n>")
    def number(request, n):
        return json({"n": n, "type": type(n).__name__})

    @app.get("/files/<path:rest>")
    def files(request, rest):
        return text(rest)

    @app.post("/items")
    def create(request):
        return json({"created": True}, status=201)

    @app.route("/things", methods=["PUT", "DELETE"])
    def things(request):
        return text(request.method)

    @app.get("/things")
    def list_things(request):
        return text("list")

    @app.route("/multi", methods=["GET", "POST"])
    def multi(request):
        return text(request.method)

    return app


class RoutingTest(unittest.TestCase):
    def setUp(self):
        self.client = Client(make_app(), prefix="/myapp")

    def test_root(self):
        response = self.client.get("/")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers["Content-Type"], "text/html; charset=utf-8")
        self.assertEqual(response.text, "<h1>home</h1>")

    def test_a_parameter_is_one_decoded_segment(self):
        self.assertEqual(self.client.get("/items/42").json(),
                         {"id": "42", "params": {"id": "42"}})
        self.assertEqual(self.client.get("/items/a%20b").json()["id"], "a b")
        self.assertEqual(self.client.get("/items/a%2Fb").json()["id"], "a/b")
        self.assertEqual(self.client.get("/items/1/2").status, 404)

    def test_int_parameters(self):
        self.assertEqual(self.client.get("/numbers/7").json(), {"n": 7, "type": "int"})
        self.assertEqual(self.client.get("/numbers/seven").status, 404)

    def test_path_parameter_takes_the_rest(self):
        self.assertEqual(self.client.get("/files/a/b/c.txt").text, "a/b/c.txt")
        self.assertEqual(self.client.get("/files/").status, 404)

    def test_trailing_slash_and_query_do_not_matter(self):
        self.assertEqual(self.client.get("/items/3/").json()["id"], "3")
        self.assertEqual(self.client.get("/items/3?x=1").json()["id"], "3")

    def test_unknown_path_is_404(self):
        response = self.client.get("/nowhere")
        self.assertEqual(response.status, 404)
        self.assertTrue(response.content_type.startswith("text/plain"))
        self.assertEqual(response.text, "not found\n")

    def test_other_method_is_405_with_allow(self):
        response = self.client.delete("/items/3")
        self.assertEqual(response.status, 405)
        self.assertEqual(response.headers["allow"], "GET, HEAD")
        response = self.client.patch("/things")
        self.assertEqual(response.status, 405)
        self.assertEqual(response.headers["Allow"], "PUT, DELETE, GET, HEAD")

    def test_method_routes(self):
        self.assertEqual(self.client.post("/items").status, 201)
        self.assertEqual(self.client.put("/things").text, "PUT")
        self.assertEqual(self.client.delete("/things").text, "DELETE")
        self.assertEqual(self.client.get("/things").text, "list")
        self.assertEqual(self.client.post("/multi").text, "POST")
        self.assertEqual(self.client.get("/multi").text, "GET")

    def test_head_is_served_by_get_without_a_body_or_length(self):
        response = self.client.head("/")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"")
        self.assertNotIn("content-length", response.headers)
        self.assertEqual(self.client.get("/").headers["content-length"], "13")

    def test_bad_patterns_are_refused(self):
        app = App()
        with self.assertRaises(ValueError):
            app.get("/files/<path:rest>/more")(lambda request, rest: "")
        with self.assertRaises(ValueError):
            app.get("/x/<float:f>")(lambda request, f: "")
        with self.assertRaises(ValueError):
            app.get("/x/a<b>")(lambda request, b: "")

    def test_handle_directly(self):
        app = make_app()
        response = app.handle(Request("GET", "/items/9"))
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json()["id"], "9")

    def test_handler_returns_plain_values(self):
        app = App()

        @app.get("/s")
        def s(request):
            return "<p>s</p>"

        @app.get("/d")
        def d(request):
            return {"a": 1}

        @app.get("/b")
        def b(request):
            return b"\x00\x01"

        @app.get("/t")
        def t(request):
            return "made", 201, {"x-extra": "1"}

        client = Client(app)
        self.assertEqual(client.get("/s").content_type, "text/html; charset=utf-8")
        self.assertEqual(client.get("/d").json(), {"a": 1})
        self.assertEqual(client.get("/b").content_type, "application/octet-stream")
        made = client.get("/t")
        self.assertEqual((made.status, made.headers["x-extra"], made.text), (201, "1", "made"))


if __name__ == "__main__":
    unittest.main()
