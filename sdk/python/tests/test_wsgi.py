"""The WSGI bridge against small hand-written WSGI applications."""

import contextlib
import io
import sys
import unittest

from wasmount import App, json, redirect
from wasmount.testing import Client
from wasmount.wsgi import build_environ, run


class Recorder:
    """A WSGI app that answers with what it saw; records close()."""

    def __init__(self):
        self.environ = None
        self.closed = 0
        self.body_read = None

    def __call__(self, environ, start_response):
        self.environ = environ
        self.body_read = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Seen", environ["PATH_INFO"])])
        app = self

        class Body:
            def __iter__(self):
                yield b"script=" + environ["SCRIPT_NAME"].encode("latin-1")
                yield b""
                yield b";path=" + environ["PATH_INFO"].encode("latin-1")

            def close(self):
                app.closed += 1

        return Body()


class EnvironTest(unittest.TestCase):
    def setUp(self):
        self.app = Recorder()
        self.client = Client(self.app, prefix="/viz/heat", host="example.org:8443",
                             scheme="https", remote_addr="10.1.2.3")

    def test_environ_keys(self):
        response = self.client.post("/plot/a%20b?x=1&y=%C3%A9", data=b"abc",
                                    headers={"content-type": "application/octet-stream",
                                             "x-custom": "v", "cookie": "a=1"})
        self.assertEqual(response.status, 200)
        env = self.app.environ
        self.assertEqual(env["REQUEST_METHOD"], "POST")
        self.assertEqual(env["SCRIPT_NAME"], "/viz/heat")
        self.assertEqual(env["PATH_INFO"], "/plot/a b")
        self.assertEqual(env["QUERY_STRING"], "x=1&y=%C3%A9")
        self.assertEqual(env["CONTENT_TYPE"], "application/octet-stream")
        self.assertEqual(env["CONTENT_LENGTH"], "3")
        self.assertNotIn("HTTP_CONTENT_TYPE", env)
        self.assertEqual(env["SERVER_NAME"], "example.org")
        self.assertEqual(env["SERVER_PORT"], "8443")
        self.assertEqual(env["HTTP_HOST"], "example.org:8443")
        self.assertEqual(env["HTTP_X_CUSTOM"], "v")
        self.assertEqual(env["HTTP_COOKIE"], "a=1")
        self.assertEqual(env["wsgi.url_scheme"], "https")
        self.assertEqual(env["REMOTE_ADDR"], "10.1.2.3")
        self.assertEqual(env["wsgi.version"], (1, 0))
        self.assertIs(env["wsgi.errors"], sys.stderr)
        self.assertFalse(env["wsgi.multithread"])
        self.assertFalse(env["wsgi.multiprocess"])
        self.assertFalse(env["wsgi.run_once"])
        self.assertEqual(self.app.body_read, b"abc")

    def test_response_and_close(self):
        response = self.client.get("/p")
        self.assertEqual(response.text, "script=/viz/heat;path=/p")
        self.assertEqual(response.headers["x-seen"], "/p")
        self.assertEqual(self.app.closed, 1)

    def test_path_info_is_latin1_of_the_utf8_bytes(self):
        self.client.get("/caf%C3%A9")
        self.assertEqual(self.app.environ["PATH_INFO"], "/caf\u00c3\u00a9")
        self.assertEqual(self.app.environ["PATH_INFO"].encode("latin-1").decode("utf-8"), "/café")

    def test_environ_without_forwarding_headers(self):
        env = build_environ("get", "/", [("host", b"plain.example")], io.BytesIO(b""))
        self.assertEqual((env["SCRIPT_NAME"], env["PATH_INFO"]), ("", "/"))
        self.assertEqual((env["SERVER_NAME"], env["SERVER_PORT"]), ("plain.example", "80"))
        self.assertEqual(env["wsgi.url_scheme"], "http")
        self.assertNotIn("REMOTE_ADDR", env)
        env = build_environ("GET", "/x", [("x-forwarded-host", b"[::1]:9000"),
                                          ("x-forwarded-proto", b"https"),
                                          ("x-forwarded-for", b"1.1.1.1, 2.2.2.2"),
                                          ("x_forwarded_for", b"6.6.6.6")], io.BytesIO(b""))
        self.assertEqual((env["SERVER_NAME"], env["SERVER_PORT"]), ("[::1]", "9000"))
        self.assertEqual(env["REMOTE_ADDR"], "1.1.1.1")
        self.assertNotIn("HTTP_X_FORWARDED_FOR_", env)
        self.assertEqual(env["HTTP_X_FORWARDED_FOR"], "1.1.1.1, 2.2.2.2")  # the _ one is dropped
        env = build_environ("GET", "/", [("x-forwarded-proto", b"https"), ("host", b"h")],
                            io.BytesIO(b""))
        self.assertEqual(env["SERVER_PORT"], "443")

    def test_repeated_headers_are_joined(self):
        env = build_environ("GET", "/", [("accept", b"a"), ("accept", b"b"),
                                         ("cookie", b"x=1"), ("cookie", b"y=2")], io.BytesIO(b""))
        self.assertEqual(env["HTTP_ACCEPT"], "a, b")
        self.assertEqual(env["HTTP_COOKIE"], "x=1; y=2")


def streaming_app(events):
    def app(environ, start_response):
        events.append("called")
        start_response("201 Created", [("Content-Type", "text/plain")])

        def body():
            try:
                for part in (b"", b"one,", b"two,", b"three"):
                    events.append(f"yield {part!r}")
                    yield part
            finally:
                events.append("generator closed")

        return body()
    return app


class StartResponseTest(unittest.TestCase):
    def test_headers_are_final_at_the_first_chunk_and_the_body_streams(self):
        events = []
        env = build_environ("GET", "/", [], io.BytesIO(b""))
        result = run(streaming_app(events), env)
        self.assertEqual(result.status, 201)
        self.assertEqual(events, ["called", "yield b''", "yield b'one,'"])  # no more pulled yet
        chunks = list(result.chunks)
        self.assertEqual(chunks, [b"one,", b"two,", b"three"])
        result.close()
        self.assertIn("generator closed", events)

    def test_start_response_may_be_called_inside_the_iterable(self):
        def app(environ, start_response):
            def body():
                start_response("200 OK", [("Content-Type", "text/plain")])
                yield b"late"
            return body()
        self.assertEqual(Client(app).get("/").text, "late")

    def test_write_callable(self):
        def app(environ, start_response):
            write = start_response("200 OK", [])
            write(b"written ")
            return [b"returned"]
        self.assertEqual(Client(app).get("/").text, "written returned")

    def test_exc_info_before_headers_replaces_the_status(self):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/html")])
            try:
                raise ValueError("boom")
            except ValueError:
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                               sys.exc_info())
            return [b"sorry"]
        response = Client(app).get("/")
        self.assertEqual((response.status, response.text), (500, "sorry"))
        self.assertEqual(response.content_type, "text/plain")

    def test_exc_info_after_headers_is_raised_again(self):
        def app(environ, start_response):
            start_response("200 OK", [])

            def body():
                yield b"first"
                try:
                    raise KeyError("late")
                except KeyError:
                    start_response("500 Internal Server Error", [], sys.exc_info())
                yield b"never"
            return body()
        result = run(app, build_environ("GET", "/", [], io.BytesIO(b"")))
        with self.assertRaises(KeyError):
            list(result.chunks)

    def test_second_call_without_exc_info_is_an_error(self):
        def app(environ, start_response):
            start_response("200 OK", [])
            start_response("200 OK", [])
            return []
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            response = Client(app).get("/")
        self.assertEqual(response.status, 500)
        self.assertIn("second time", stderr.getvalue())

    def test_an_exception_before_the_response_is_a_500_with_the_traceback(self):
        closed = []

        class Body:
            def __iter__(self):
                raise RuntimeError("exploded")
                yield b""

            def close(self):
                closed.append(True)

        def app(environ, start_response):
            start_response("200 OK", [])
            return Body()
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            response = Client(app).get("/x", headers={"accept": "application/json"})
        self.assertEqual(response.status, 500)
        self.assertEqual(response.json(), {"error": "internal server error", "status": 500})
        self.assertEqual(closed, [True])
        said = stderr.getvalue()
        self.assertTrue(said.startswith("wasmount: GET /x failed:\nTraceback"))
        self.assertIn("exploded", said)
        self.assertIn("__iter__", said)

    def test_str_chunks_are_refused(self):
        def app(environ, start_response):
            start_response("200 OK", [])
            return ["text"]
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            self.assertEqual(Client(app).get("/").status, 500)
        self.assertIn("must yield bytes", stderr.getvalue())

    def test_no_start_response(self):
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            self.assertEqual(Client(lambda e, s: [b"x"]).get("/").status, 500)
        self.assertIn("without calling start_response", stderr.getvalue())

    def test_head_drops_the_body_and_content_length(self):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", "5"), ("Connection", "close")])
            return [b"hello"]
        response = Client(app).head("/")
        self.assertEqual(response.body, b"")
        self.assertNotIn("content-length", response.headers)
        self.assertNotIn("connection", response.headers)  # never sent by a component
        self.assertEqual(Client(app).get("/").headers["content-length"], "5")


class InputStreamTest(unittest.TestCase):
    def test_readline_and_chunks_from_wsgi_input(self):
        seen = {}

        def app(environ, start_response):
            stream = environ["wsgi.input"]
            seen["first"] = stream.readline()
            seen["two"] = stream.read(2)
            seen["rest"] = stream.read()
            start_response("204 No Content", [])
            return []
        Client(app).post("/", data=b"line one\nabcdef")
        self.assertEqual(seen, {"first": b"line one\n", "two": b"ab", "rest": b"cdef"})


class AppAsWSGITest(unittest.TestCase):
    def test_an_sdk_app_is_a_wsgi_app_too(self):
        app = App()

        @app.get("/hello/<name>")
        def hello(request, name):
            return json({"name": name, "prefix": request.prefix, "q": request.args})

        @app.get("/go")
        def go(request):
            return redirect("/hello/x")

        env = build_environ("GET", "/hello/b%C3%B8?q=1",
                            [("x-forwarded-prefix", b"/mnt")], io.BytesIO(b""))
        env.pop("HTTP_X_FORWARDED_PREFIX")  # as under another server: SCRIPT_NAME only
        started = {}
        body = app(env, lambda status, headers: started.update(status=status, headers=headers))
        self.assertEqual(started["status"], "200 OK")
        import json as std_json
        self.assertEqual(std_json.loads(b"".join(body)), {"name": "bø", "prefix": "/mnt", "q": {"q": "1"}})


if __name__ == "__main__":
    unittest.main()
