"""Responses: the helpers' content types, redirects (302 by default) relative to the mount
prefix."""

import unittest

from wasmount import App, Response, html, json, redirect, svg, text
from wasmount.testing import Client


class HelpersTest(unittest.TestCase):
    def test_content_types_and_status(self):
        self.assertEqual(html("<p>").header("content-type"), "text/html; charset=utf-8")
        self.assertEqual(text("t", status=202).status, 202)
        self.assertEqual(text("t").header("Content-Type"), "text/plain; charset=utf-8")
        self.assertEqual(svg("<svg/>").header("content-type"), "image/svg+xml")
        response = json({"é": [1, None]}, status=201)
        self.assertEqual((response.status, response.header("content-type")), (201, "application/json"))
        self.assertEqual(response.body, '{"é":[1,null]}'.encode())
        self.assertEqual(response.json(), {"é": [1, None]})

    def test_response_class(self):
        response = Response("hi", 200, {"X-A": "1"}, content_type="text/plain")
        self.assertEqual(response.body, b"hi")
        self.assertEqual(response.headers, [("X-A", "1"), ("content-type", "text/plain")])
        response.set_header("x-a", "2").add_header("set-cookie", "a=1").add_header("set-cookie", "b=2")
        self.assertEqual(response.header("X-A"), "2")
        self.assertEqual([v for n, v in response.headers if n == "set-cookie"], ["a=1", "b=2"])
        self.assertEqual(response.text, "hi")

    def test_extra_headers(self):
        response = html("x", headers=[("cache-control", "no-store")])
        self.assertEqual(response.header("cache-control"), "no-store")


class RedirectTest(unittest.TestCase):
    def setUp(self):
        app = App()

        @app.get("/abs")
        def absolute(request):
            return redirect("/items/1")

        @app.get("/rel")
        def relative(request):
            return redirect("items/1")

        @app.get("/full")
        def full(request):
            return redirect("https://example.org/x", code=301)

        @app.get("/net")
        def network_path(request):
            return redirect("//example.org/x")

        self.app = app

    def test_a_location_from_the_root_of_the_app_gets_the_prefix(self):
        response = Client(self.app, prefix="/viz/heat").get("/abs")
        self.assertEqual(response.status, 302)
        self.assertEqual(response.location, "/viz/heat/items/1")
        self.assertEqual(Client(self.app, prefix="").get("/abs").location, "/items/1")

    def test_302_unless_the_code_says_otherwise(self):
        self.assertEqual(redirect("/x").status, 302)
        self.assertEqual(redirect("/x").header("location"), "/x")
        self.assertEqual(redirect("/x", 303).status, 303)
        self.assertEqual(redirect("/x", code=308).status, 308)

    def test_other_locations_are_left_alone(self):
        client = Client(self.app, prefix="/viz")
        self.assertEqual(client.get("/rel").location, "items/1")
        full = client.get("/full")
        self.assertEqual((full.status, full.location), (301, "https://example.org/x"))
        self.assertEqual(client.get("/net").location, "//example.org/x")


if __name__ == "__main__":
    unittest.main()
