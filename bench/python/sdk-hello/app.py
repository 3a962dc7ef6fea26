"""The Python SDK's hello, for bench/python.sh."""

from wasmount import App, text

app = App()


@app.get("/hello")
def hello(request):
    return text("hello from the Python SDK\n")


IncomingHandler = app.handler()
