"""Input: INPUT_JSON (nested and flat file_relationships), typed parameters in both layouts,
the instance name, and INPUT_JSON_URL with fetch mocked."""

import json
import os
import unittest
from unittest import mock

from wasmount import Input, InputError
from wasmount.fetch import FetchError, FetchResponse

NESTED = {
    "api_prefix": "http://refinery/api/v2/",
    "file_relationships": [["http://data/a.csv"], ["http://data/b.csv", "http://data/c.csv"]],
    "parameters": [
        {"name": "title", "value": "Expression", "value_type": "STRING"},
        {"name": "top", "value": "20", "value_type": "INTEGER"},
        {"name": "scale", "value": 0.5},
        {"name": "log", "value": "true"},
        {"name": "count", "value": 3},
        {"name": "empty", "value": None},
    ],
    "extra_options": {"theme": "dark"},
    "node_info": {"n1": {"name": "a"}},
}
FLAT = {
    "file_relationships": ["http://data/a.csv", "http://data/b.csv"],
    "parameters": {"title": "Flat", "top": 7, "log": False, "scale": "2"},
}


class InputTest(unittest.TestCase):
    def load(self, data, **extra):
        return Input.load({"INPUT_JSON": json.dumps(data), **extra})

    def test_nested_file_relationships_are_flattened(self):
        source = self.load(NESTED)
        self.assertTrue(source.launched)
        self.assertEqual(source.file_urls,
                         ["http://data/a.csv", "http://data/b.csv", "http://data/c.csv"])
        self.assertEqual(source.file_relationships, NESTED["file_relationships"])

    def test_flat_file_relationships(self):
        self.assertEqual(self.load(FLAT).file_urls, ["http://data/a.csv", "http://data/b.csv"])

    def test_typed_parameters_from_a_list(self):
        source = self.load(NESTED)
        self.assertEqual(source.parameter("title"), "Expression")
        self.assertEqual(source.parameter("top", int), 20)
        self.assertEqual(source.parameter("scale", float), 0.5)
        self.assertIs(source.parameter("log", bool), True)
        self.assertEqual(source.parameter("count", int), 3)
        self.assertEqual(source.parameter("count", str), "3")
        self.assertEqual(source.parameter("count", float), 3.0)
        self.assertEqual(source.parameter("missing", int, default=5), 5)
        self.assertEqual(source.parameter("empty", int, default=1), 1)
        self.assertEqual(source.raw_parameter("top"), "20")
        self.assertEqual(source.parameters, NESTED["parameters"])

    def test_typed_parameters_from_an_object(self):
        source = self.load(FLAT)
        self.assertEqual(source.parameter("title"), "Flat")
        self.assertEqual(source.parameter("top", int), 7)
        self.assertEqual(source.parameter("top", str), "7")
        self.assertIs(source.parameter("log", bool), False)
        self.assertEqual(source.parameter("scale", float), 2.0)
        self.assertEqual(source.parameter("scale", int), 2)
        self.assertIsNone(source.parameter("nothing"))

    def test_a_value_of_the_wrong_type_names_the_parameter(self):
        source = self.load(NESTED)
        with self.assertRaisesRegex(InputError, "'title'.*int"):
            source.parameter("title", int)
        with self.assertRaisesRegex(InputError, "'scale'"):
            source.parameter("scale", int)
        with self.assertRaisesRegex(InputError, "'title'.*bool"):
            source.parameter("title", bool)

    def test_extra_options_and_other_fields(self):
        source = self.load(NESTED)
        self.assertEqual(source.extra_options, {"theme": "dark"})
        self.assertEqual(source.api_prefix, "http://refinery/api/v2/")
        self.assertEqual(source.node_info, {"n1": {"name": "a"}})
        self.assertEqual(self.load(FLAT).extra_options, {})

    def test_instance_name(self):
        with mock.patch.dict(os.environ, {"WASMOUNT_INSTANCE": "heat-1"}):
            self.assertEqual(Input().instance_name, "heat-1")
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertIsNone(Input().instance_name)

    def test_load_reads_the_process_environment(self):
        with mock.patch.dict(os.environ, {"INPUT_JSON": json.dumps(FLAT)}, clear=True):
            self.assertEqual(Input.load().parameter("top", int), 7)

    def test_not_launched(self):
        source = Input.load({})
        self.assertFalse(source.launched)
        self.assertEqual(source.file_urls, [])
        self.assertEqual(source.parameter("x", int, 3), 3)

    def test_invalid_input(self):
        with self.assertRaisesRegex(InputError, "not valid JSON"):
            Input.load({"INPUT_JSON": "{oops"})
        with self.assertRaisesRegex(InputError, "JSON object"):
            Input.load({"INPUT_JSON": "[1, 2]"})

    def test_input_json_url_is_fetched(self):
        answer = FetchResponse("http://refinery/input/1", 200,
                               [("content-type", "application/json")],
                               json.dumps(NESTED).encode())
        with mock.patch("wasmount.input.fetch", return_value=answer) as fetch:
            source = Input.load({"INPUT_JSON_URL": "http://refinery/input/1"})
        fetch.assert_called_once_with("http://refinery/input/1", timeout=30.0)
        self.assertEqual(len(source.file_urls), 3)
        self.assertEqual(source.parameter("top", int), 20)

    def test_input_json_wins_over_the_url(self):
        with mock.patch("wasmount.input.fetch") as fetch:
            source = Input.load({"INPUT_JSON": json.dumps(FLAT), "INPUT_JSON_URL": "http://x/"})
        fetch.assert_not_called()
        self.assertEqual(source.parameter("title"), "Flat")

    def test_a_failed_fetch_is_an_input_error(self):
        denied = FetchError("fetching http://x/: the host refused the request")
        with mock.patch("wasmount.input.fetch", side_effect=denied):
            with self.assertRaisesRegex(InputError, "could not be fetched.*refused"):
                Input.load({"INPUT_JSON_URL": "http://x/"})
        missing = FetchResponse("http://x/", 404, [], b"no")
        with mock.patch("wasmount.input.fetch", return_value=missing):
            with self.assertRaisesRegex(InputError, "answered 404"):
                Input.load({"INPUT_JSON_URL": "http://x/"})

    def test_a_fetcher_can_be_given(self):
        source = Input.load({"INPUT_JSON_URL": "http://x/"},
                            fetcher=lambda url, timeout: FetchResponse(url, 200, [], b'{"parameters": {"a": 1}}'))
        self.assertEqual(source.parameter("a", int), 1)


if __name__ == "__main__":
    unittest.main()
