"""The component glue (wasmount._guest) and fetch over wasi:http, against in-memory fakes of
componentize-py's bindings (tests/fake_wit.py): what the component does, natively."""

import contextlib
import io
import sys
import unittest

import fake_wit

guest = fetch_module = None


def setUpModule():
    global guest, fetch_module
    fake_wit.install()
    guest = sys.modules["wasmount._guest"]
    fetch_module = sys.modules["wasmount.fetch"]


def tearDownModule():
    fake_wit.uninstall()


def types():
    return sys.modules["wit_world.imports.types"]


def incoming(method="GET", path="/", headers=(), body=()):
    t = types()
    method_value = getattr(t, "Method_" + method.capitalize())()
    default = [("host", b"localhost"), ("x-forwarded-prefix", b"/myapp"),
               ("x-forwarded-proto", b"http"), ("x-forwarded-host", b"example.org"),
               ("x-forwarded-for", b"10.0.0.1")]
    return t.IncomingRequest(method_value, path, default + list(headers), list(body))


def serve(handler_class, request):
    out = types().ResponseOutparam()
    handler_class().handle(request, out)
    return out


class GuestHandlerTest(unittest.TestCase):
    def make_app(self):
        from wasmount import App, html, json, redirect

        app = App()

        @app.get("/")
        def index(request):
            return html("<h1>hi</h1>")

        @app.get("/big")
        def big(request):
            return html("x" * 10000)

        @app.post("/echo")
        def echo(request):
            return json({"body": request.text, "prefix": request.prefix})

        @app.get("/go")
        def go(request):
            return redirect("/there")

        return app

    def response(self, out):
        self.assertIsNotNone(out.response, "no response was set")
        response = out.response.value
        return response, dict((n, v) for n, v in response.fields._entries), response._body

    def test_the_class_is_an_incoming_handler(self):
        app = self.make_app()
        cls = app.handler()
        self.assertTrue(issubclass(cls, sys.modules["wit_world.exports"].IncomingHandler))
        self.assertIs(cls.target, app)

    def test_an_sdk_app_answers(self):
        request = incoming("GET", "/")
        out = serve(self.make_app().handler(), request)
        response, headers, body = self.response(out)
        self.assertEqual(response.status, 200)
        self.assertEqual(headers["content-type"], b"text/html; charset=utf-8")
        self.assertEqual(headers["content-length"], b"11")
        self.assertEqual(bytes(body.data), b"<h1>hi</h1>")
        self.assertTrue(body.finished)
        self.assertTrue(request._body.dropped)  # body and stream released, in order
        self.assertTrue(request._body._stream.dropped)
        request.__exit__(None, None, None)  # what componentize-py does next: no child left alive

    def test_large_bodies_go_in_writes_of_4096_bytes_at_most(self):
        out = serve(self.make_app().handler(), incoming("GET", "/big"))
        _, _, body = self.response(out)
        self.assertEqual(body.stream.writes, [4096, 4096, 1808])
        self.assertEqual(len(body.data), 10000)

    def test_the_request_body_is_streamed_in(self):
        out = serve(self.make_app().handler(),
                    incoming("POST", "/echo", [("content-type", b"text/plain")],
                             [b"hel", b"", b"lo"]))
        _, _, body = self.response(out)
        self.assertEqual(bytes(body.data), b'{"body":"hello","prefix":"/myapp"}')

    def test_redirect_gets_the_prefix(self):
        out = serve(self.make_app().handler(), incoming("GET", "/go"))
        response, headers, _ = self.response(out)
        self.assertEqual((response.status, headers["location"]), (302, b"/myapp/there"))

    def test_head_writes_no_body_and_no_length(self):
        out = serve(self.make_app().handler(), incoming("HEAD", "/"))
        response, headers, body = self.response(out)
        self.assertEqual(response.status, 200)
        self.assertNotIn("content-length", headers)
        self.assertEqual(bytes(body.data), b"")
        self.assertTrue(body.finished)

    def test_a_wsgi_app_streams_and_is_closed(self):
        closed = []

        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close"),
                                      ("X-Script", environ["SCRIPT_NAME"])])

            class Body:
                def __iter__(self):
                    yield b"a" * 5000
                    yield environ["wsgi.input"].read()

                def close(self):
                    closed.append(True)
            return Body()

        out = serve(guest.handler(app), incoming("PUT", "/x", body=[b"tail"]))
        response, headers, body = self.response(out)
        self.assertEqual(headers["x-script"], b"/myapp")
        self.assertNotIn("connection", headers)
        self.assertEqual(body.stream.writes, [4096, 904, 4])
        self.assertEqual(bytes(body.data)[-4:], b"tail")
        self.assertEqual(closed, [True])

    def test_a_failure_mid_body_aborts_it(self):
        def app(environ, start_response):
            start_response("200 OK", [])

            def body():
                yield b"partial"
                raise RuntimeError("late failure")
            return body()

        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            out = serve(guest.handler(app), incoming())
        response, _, body = self.response(out)
        self.assertEqual(response.status, 200)
        self.assertFalse(body.finished)  # dropped unfinished: the host sees a failed body
        self.assertTrue(body.dropped)
        self.assertIn("late failure", stderr.getvalue())

    def test_an_app_crash_is_a_500(self):
        def app(environ, start_response):
            raise ValueError("no")

        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            out = serve(guest.handler(app), incoming())
        response, headers, body = self.response(out)
        self.assertEqual(response.status, 500)
        self.assertEqual(bytes(body.data), b"internal server error\n")
        self.assertIn("ValueError: no", stderr.getvalue())

    def test_a_refused_header_is_left_out(self):
        from wasmount import Response

        app = self.make_app()
        app.get("/odd")(lambda request: Response("x", headers=[("Proxy-Authenticate", "x"),
                                                               ("Bad\nName", "1"), ("ok", "1")]))
        with contextlib.redirect_stderr(io.StringIO()):
            out = serve(app.handler(), incoming("GET", "/odd"))
        response, headers, _ = self.response(out)
        self.assertEqual(response.status, 200)
        self.assertIn("ok", headers)
        self.assertNotIn("proxy-authenticate", headers)

    def test_a_wrong_content_length_is_reported(self):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", "99")])
            return [b"short"]

        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            serve(guest.handler(app), incoming())
        self.assertIn("content-length", stderr.getvalue())


class FetchTest(unittest.TestCase):
    def setUp(self):
        fake_wit.Outgoing.requests = []
        fake_wit.Outgoing.options = []
        fake_wit.Clock.rings = False
        fake_wit.Clock.subscribed = []

    def answer(self, status=200, headers=(), chunks=(), ready_after=0, fail=None):
        def respond(request):
            t = types()
            return t.FutureIncomingResponse(
                t.IncomingResponse(status, list(headers), list(chunks), fail), ready_after)
        fake_wit.Outgoing.answer = respond

    def test_get(self):
        self.answer(200, [("content-type", b"application/json")], [b'{"a":', b"", b" 1}"],
                    ready_after=2)
        response = fetch_module.fetch("https://data.example.org:8443/t.json?x=1",
                                      headers={"accept": "application/json", "Host": "evil"},
                                      timeout=5)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json(), {"a": 1})
        self.assertEqual(response.headers["Content-Type"], "application/json")
        self.assertTrue(response.ok)
        sent = fake_wit.Outgoing.requests[0]
        self.assertEqual(type(sent.method_).__name__, "Method_Get")
        self.assertEqual(type(sent.scheme_).__name__, "Scheme_Https")
        self.assertEqual(sent.authority_, "data.example.org:8443")
        self.assertEqual(sent.path_, "/t.json?x=1")
        self.assertEqual(sent.fields._entries, [("accept", b"application/json")])
        self.assertIsNone(sent._body)  # no body asked for a GET
        self.assertEqual(fake_wit.Outgoing.options[0].timeouts,
                         {"connect": 5_000_000_000, "first_byte": 5_000_000_000})
        self.assertEqual(fake_wit.Clock.subscribed, [5_000_000_000])

    def test_post_body_in_4096_byte_writes_with_length(self):
        self.answer(201, [], [b"ok"])
        data = b"z" * 9000
        response = fetch_module.fetch("http://api.local/items", method="post", body=data)
        self.assertEqual(response.status, 201)
        sent = fake_wit.Outgoing.requests[0]
        self.assertEqual(type(sent.method_).__name__, "Method_Post")
        self.assertEqual(type(sent.scheme_).__name__, "Scheme_Http")
        self.assertEqual(dict(sent.fields._entries)["content-length"], b"9000")
        self.assertEqual(sent._body.stream.writes, [4096, 4096, 808])
        self.assertTrue(sent._body.finished)

    def test_denied_by_the_host(self):
        fake_wit.Outgoing.answer = lambda request: types().FutureIncomingResponse(
            types().ErrorCode_HttpRequestDenied())
        with self.assertRaises(fetch_module.FetchError) as caught:
            fetch_module.fetch("https://elsewhere.org/x")
        self.assertEqual(caught.exception.code, "HttpRequestDenied")
        self.assertIn("elsewhere.org is not allowed", str(caught.exception))
        self.assertIn("allowed_outbound_hosts", str(caught.exception))

    def test_refused_when_handle_raises(self):
        def refuse(request):
            raise fake_wit.Err(types().ErrorCode_DnsError(types().DnsErrorPayload("NXDOMAIN", None)))
        fake_wit.Outgoing.answer = refuse
        with self.assertRaises(fetch_module.FetchError) as caught:
            fetch_module.fetch("http://nowhere.invalid/", method="DELETE")
        self.assertEqual(caught.exception.code, "DnsError")
        self.assertIn("nowhere.invalid could not be resolved", str(caught.exception))
        self.assertIn("rcode=NXDOMAIN", str(caught.exception))

    def test_timeout(self):
        fake_wit.Outgoing.answer = lambda request: types().FutureIncomingResponse(None)
        fake_wit.Clock.rings = True
        with self.assertRaises(fetch_module.FetchError) as caught:
            fetch_module.fetch("http://slow.example/", timeout=0.5)
        self.assertEqual(caught.exception.code, "Timeout")
        self.assertIn("within 0.5 s", str(caught.exception))

    def test_error_status_is_a_response(self):
        self.answer(404, [], [b"missing"])
        response = fetch_module.fetch("http://x.example/a")
        self.assertFalse(response.ok)
        self.assertEqual(response.text(), "missing")
        with self.assertRaises(fetch_module.FetchError) as caught:
            response.raise_for_status()
        self.assertEqual(caught.exception.status, 404)

    def test_redirects_are_not_followed(self):
        self.answer(302, [("location", b"http://other/")], [])
        response = fetch_module.fetch("http://x.example/a")
        self.assertEqual((response.status, response.headers["location"]), (302, "http://other/"))
        self.assertEqual(len(fake_wit.Outgoing.requests), 1)

    def test_a_broken_body(self):
        self.answer(200, [], [b"part"], fail="connection reset")
        with self.assertRaisesRegex(fetch_module.FetchError, "connection reset"):
            fetch_module.fetch("http://x.example/a")

    def test_bad_urls(self):
        for url in ("ftp://x/", "/relative", "http:///nohost"):
            with self.assertRaises(fetch_module.FetchError):
                fetch_module.fetch(url)

    def test_basic_auth_from_the_url(self):
        self.answer(200, [], [])
        fetch_module.fetch("https://user:p%40ss@x.example/")
        sent = fake_wit.Outgoing.requests[0]
        self.assertEqual(sent.authority_, "x.example")
        self.assertEqual(dict(sent.fields._entries)["authorization"], b"Basic dXNlcjpwQHNz")

    def test_input_load_fetches_through_the_host(self):
        self.answer(200, [], [b'{"file_relationships": [["http://d/a.csv"]]}'])
        Input = sys.modules["wasmount.input"].Input
        source = Input.load({"INPUT_JSON_URL": "http://refinery.local/input.json"})
        self.assertEqual(source.file_urls, ["http://d/a.csv"])
        self.assertEqual(fake_wit.Outgoing.requests[0].authority_, "refinery.local")


class NativeTest(unittest.TestCase):
    """Without bindings, the handler class exists but says where it runs."""

    def test_native_handler(self):
        fake_wit.uninstall()
        try:
            from wasmount import App
            cls = App().handler()
            with self.assertRaisesRegex(RuntimeError, "only runs inside a component"):
                cls().handle(None, None)
        finally:
            fake_wit.install()


if __name__ == "__main__":
    unittest.main()
