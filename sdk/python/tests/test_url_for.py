"""url_for: an endpoint (a view function's name, or the route's endpoint=) and values, as in
Flask: parameters fill the route, the rest is the query, the mount prefix comes first."""

import io
import unittest

from wasmount import App, BuildError, Request, json, redirect, text
from wasmount.testing import Client
from wasmount.wsgi import build_environ


def linking_app() -> App:
    app = App()

    @app.get("/")
    def index(request):
        return text("home")

    @app.get("/items/<int:id>")
    def item(request, id):
        return text(str(id))

    @app.get("/users/<name>/files/<path:rest>")
    def user_file(request, name, rest):
        return text(rest)

    @app.get("/pages")
    @app.get("/pages/<int:page>")
    def pages(request, page=1):
        return text(str(page))

    @app.get("/about/", endpoint="about-page")
    def about(request):
        return text("about")

    @app.route("/things", methods=["GET", "POST"])
    def things(request):
        return text("things")

    @app.post("/things/new")
    def things_new(request):
        return text("new")

    @app.get("/link")
    def link(request):
        values = dict(request.args)
        endpoint = values.pop("to")
        return json({"url": request.url_for(endpoint, **values), "endpoint": request.endpoint})

    @app.get("/back")
    def back(request):
        return redirect(request.url_for("item", id=7))

    return app


class UrlForTest(unittest.TestCase):
    def setUp(self):
        self.app = linking_app()
        self.client = Client(self.app, prefix="/viz/heat")

    def url_for(self, endpoint, /, prefix="/viz", **values):
        """``request.url_for(endpoint, **values)`` as a handler of the app would get it."""
        request = Request("GET", "/link", {"x-forwarded-prefix": prefix,
                                           "x-forwarded-host": "example.org",
                                           "x-forwarded-proto": "https"})
        request.url_map = self.app.url_map
        return request.url_for(endpoint, **values)

    def test_the_endpoint_is_the_view_function_s_name(self):
        self.assertEqual(self.url_for("index"), "/viz/")
        self.assertEqual(self.url_for("item", id=3), "/viz/items/3")
        self.assertEqual(self.url_for("things"), "/viz/things")

    def test_in_a_handler_with_the_mount_prefix(self):
        got = self.client.get("/link", query={"to": "item", "id": "12"}).json()
        self.assertEqual(got, {"url": "/viz/heat/items/12", "endpoint": "link"})
        self.assertEqual(Client(self.app, prefix="").get("/link?to=index").json()["url"], "/")

    def test_other_values_are_the_query(self):
        self.assertEqual(self.url_for("item", id=3, full=1, tag=["a", "b c"]),
                         "/viz/items/3?full=1&tag=a&tag=b+c")
        self.assertEqual(self.url_for("index", q="x&y", empty=None), "/viz/?q=x%26y")

    def test_parameters_are_escaped_per_segment(self):
        self.assertEqual(self.url_for("user_file", name="a b/c", rest="d/é.csv"),
                         "/viz/users/a%20b%2Fc/files/d/%C3%A9.csv")
        # and the built path routes back to the same values
        got = self.client.get("/users/a%20b%2Fc/files/d/%C3%A9.csv")
        self.assertEqual((got.status, got.text), (200, "d/é.csv"))

    def test_an_explicit_endpoint_and_a_trailing_slash(self):
        self.assertEqual(self.url_for("about-page"), "/viz/about/")
        with self.assertRaises(BuildError):
            self.url_for("about")  # the endpoint replaces the function's name

    def test_the_route_taking_the_most_values_is_chosen(self):
        self.assertEqual(self.url_for("pages"), "/viz/pages")
        self.assertEqual(self.url_for("pages", page=2), "/viz/pages/2")
        self.assertEqual(self.client.get("/pages/2").text, "2")

    def test_anchor_method_and_external(self):
        self.assertEqual(self.url_for("item", id=1, _anchor="part 2"), "/viz/items/1#part%202")
        self.assertEqual(self.url_for("things", _method="POST"), "/viz/things")
        with self.assertRaisesRegex(BuildError, "_method='DELETE'"):
            self.url_for("things", _method="DELETE")
        self.assertEqual(self.url_for("item", id=1, _external=True),
                         "https://example.org/viz/items/1")

    def test_an_unknown_endpoint_is_a_build_error_naming_it(self):
        with self.assertRaises(BuildError) as raised:
            self.url_for("itme", id=1)
        said = str(raised.exception)
        self.assertIn("'itme'", said)
        self.assertIn("'item'", said)  # the endpoints there are
        self.assertIsInstance(raised.exception, LookupError)
        with self.assertRaisesRegex(BuildError, "not a path"):
            self.url_for("/items/1")

    def test_a_missing_parameter_is_a_build_error_naming_it(self):
        with self.assertRaises(BuildError) as raised:
            self.url_for("user_file", name="ada")
        said = str(raised.exception)
        self.assertIn("rest", said)
        self.assertIn("/users/<name>/files/<path:rest>", said)
        with self.assertRaisesRegex(BuildError, "id"):
            self.url_for("item", id=None)  # None is no value

    def test_a_value_that_cannot_fill_its_parameter_is_a_value_error(self):
        for bad in ("x", -1, 1.5, True):
            with self.assertRaises(ValueError):
                self.url_for("item", id=bad)
        with self.assertRaises(ValueError):
            self.url_for("user_file", name="", rest="a")
        self.assertEqual(self.url_for("item", id="007"), "/viz/items/7")

    def test_a_failure_in_a_handler_is_a_500(self):
        import contextlib
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            response = self.client.get("/link?to=nowhere")
        self.assertEqual(response.status, 500)
        self.assertIn("BuildError: url_for('nowhere')", stderr.getvalue())

    def test_redirect_sends_what_url_for_built_as_it_is(self):
        response = self.client.get("/back")
        self.assertEqual((response.status, response.location), (302, "/viz/heat/items/7"))

    def test_under_wsgi_the_prefix_is_script_name(self):
        environ = build_environ("GET", "/link?to=item&id=5", [], io.BytesIO(b""))
        environ["SCRIPT_NAME"] = "/mnt"
        body = b"".join(self.app(environ, lambda status, headers: None))
        self.assertIn(b'"url":"/mnt/items/5"', body)

    def test_a_request_no_app_routed_cannot_build(self):
        with self.assertRaisesRegex(RuntimeError, "App"):
            Request("GET", "/").url_for("index")


class EndpointTest(unittest.TestCase):
    def test_one_endpoint_names_one_function(self):
        app = App()

        @app.get("/a")
        def view(request):
            return ""

        def other(request):
            return ""

        other.__name__ = "view"
        with self.assertRaisesRegex(ValueError, "endpoint 'view' is already"):
            app.get("/b")(other)
        app.get("/b", endpoint="other_view")(other)  # named apart, it is fine
        app.get("/c")(view)  # the same function on another route is fine too
        self.assertEqual(app.url_map.endpoints(), ["view", "other_view"])


if __name__ == "__main__":
    unittest.main()
