"""Flask's hello, unmodified, for bench/python.sh (served through the WSGI bridge)."""

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello():
    return "hello from Flask\n"
