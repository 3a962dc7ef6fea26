"""Errors: HTTPError in JSON or text as the request and route say; 500 with one traceback."""

import contextlib
import io
import os
import unittest
from unittest import mock

import wasmount
from wasmount import App, HTTPError, text
from wasmount.testing import Client


def failing_app() -> App:
    app = App()

    @app.get("/missing")
    def missing(request):
        raise HTTPError(404, "no such item")

    @app.get("/api/missing", json_errors=True)
    def api_missing(request):
        raise HTTPError(404, "no such item")

    @app.get("/teapot")
    def teapot(request):
        raise HTTPError(418, "short and stout", json=True, headers=[("x-pot", "1")])

    @app.get("/crash")
    def crash(request):
        return helper_that_fails()

    @app.get("/none")
    def returns_none(request):
        text("forgot to return")

    return app


def helper_that_fails():
    return {}["key"]


class ErrorsTest(unittest.TestCase):
    def setUp(self):
        self.client = Client(failing_app())

    def test_text_for_a_page_load(self):
        response = self.client.get("/missing", headers={"accept": "text/html,application/json;q=0.9"})
        self.assertEqual(response.status, 404)
        self.assertTrue(response.content_type.startswith("text/plain"))
        self.assertEqual(response.text, "no such item\n")

    def test_json_when_the_request_accepts_json_only(self):
        response = self.client.get("/missing", headers={"accept": "application/json"})
        self.assertEqual(response.status, 404)
        self.assertEqual(response.content_type, "application/json")
        self.assertEqual(response.json(), {"error": "no such item", "status": 404})

    def test_json_when_the_request_sent_json(self):
        response = self.client.request("GET", "/missing",
                                       headers={"content-type": "application/json; charset=utf-8"})
        self.assertEqual(response.json()["status"], 404)

    def test_json_for_a_json_route_whatever_the_request(self):
        response = self.client.get("/api/missing", headers={"accept": "text/html"})
        self.assertEqual(response.json(), {"error": "no such item", "status": 404})

    def test_json_forced_by_the_error_with_its_headers(self):
        response = self.client.get("/teapot")
        self.assertEqual(response.status, 418)
        self.assertEqual(response.json()["error"], "short and stout")
        self.assertEqual(response.headers["x-pot"], "1")

    def test_404_and_405_follow_the_request(self):
        response = self.client.get("/nowhere", headers={"accept": "application/json"})
        self.assertEqual(response.json(), {"error": "not found", "status": 404})
        response = self.client.post("/missing", headers={"accept": "application/problem+json"})
        self.assertEqual(response.status, 405)
        self.assertEqual(response.json()["status"], 405)
        self.assertEqual(response.headers["allow"], "GET, HEAD")

    def test_an_exception_is_a_500_with_one_traceback_block_on_stderr(self):
        stderr = io.StringIO()
        with mock.patch("sys.stderr", stderr), mock.patch.object(stderr, "write",
                                                                 wraps=stderr.write) as write:
            response = self.client.get("/crash")
        self.assertEqual(response.status, 500)
        self.assertEqual(response.text, "internal server error\n")
        self.assertNotIn("KeyError", response.text)  # no details leak to the client
        self.assertEqual(write.call_count, 1)  # one block
        said = stderr.getvalue()
        self.assertTrue(said.startswith("wasmount: GET /crash failed:\nTraceback (most recent call last):\n"))
        self.assertIn(__file__.rsplit("/", 1)[-1], said)  # the developer's file
        self.assertIn("in crash", said)
        self.assertIn("in helper_that_fails", said)
        self.assertNotIn(os.path.dirname(wasmount.__file__), said)  # starts in the handler
        self.assertTrue(said.rstrip().endswith("KeyError: 'key'"))

    def test_500_is_json_for_a_script(self):
        with contextlib.redirect_stderr(io.StringIO()):
            response = self.client.get("/crash", headers={"accept": "application/json"})
        self.assertEqual(response.json(), {"error": "internal server error", "status": 500})

    def test_returning_nothing_is_a_500_that_says_why(self):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            response = self.client.get("/none")
        self.assertEqual(response.status, 500)
        self.assertIn("a handler returned NoneType", stderr.getvalue())


class GuestPathsTest(unittest.TestCase):
    def test_mounted_paths_are_shown_relative_to_their_folder(self):
        from wasmount._errors import guest_paths_as_project_paths
        said = ('  File "/0/app.py", line 55, in crash\n'
                '  File "/1/wasmount/_app.py", line 3, in handle\n'
                '  File "/python/lib/python3.14/json/__init__.py", line 1, in loads\n')
        self.assertEqual(guest_paths_as_project_paths(said),
                         '  File "app.py", line 55, in crash\n'
                         '  File "wasmount/_app.py", line 3, in handle\n'
                         '  File "/python/lib/python3.14/json/__init__.py", line 1, in loads\n')

    def test_in_the_component_the_report_uses_them(self):
        stderr = io.StringIO()
        with mock.patch("sys.platform", "wasi"), contextlib.redirect_stderr(stderr):
            try:
                exec(compile("1/0", "/0/app.py", "exec"))
            except ZeroDivisionError as error:
                from wasmount._errors import report_exception
                report_exception(error, "GET /")
        self.assertIn('File "app.py", line 1', stderr.getvalue())


if __name__ == "__main__":
    unittest.main()
