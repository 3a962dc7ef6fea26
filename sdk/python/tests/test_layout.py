"""The package's layout: each module says what it owns, and the modules import one another as
a DAG (no cycle, not even through an import inside a function)."""

import ast
import pathlib
import unittest

import wasmount

PACKAGE = pathlib.Path(wasmount.__file__).parent


def internal_imports(path: pathlib.Path) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in it."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                imported.add(node.module.split(".")[0])
            else:
                imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wasmount."):
            imported.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[1] for alias in node.names
                            if alias.name.startswith("wasmount."))
    return imported


class LayoutTest(unittest.TestCase):
    def test_every_module_starts_with_a_docstring(self):
        for path in sorted(PACKAGE.glob("*.py")):
            with self.subTest(module=path.name):
                self.assertTrue(ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))))

    def test_the_modules_import_one_another_as_a_dag(self):
        graph = {path.stem: internal_imports(path) for path in PACKAGE.glob("*.py")}
        graph.pop("__init__")  # the package imports everything, and nothing imports it
        done: set[str] = set()

        def visit(module: str, trail: tuple[str, ...]) -> None:
            if module in trail:
                cycle = " → ".join(trail[trail.index(module):] + (module,))
                self.fail(f"an import cycle: {cycle}")
            if module in done:
                return
            for imported in sorted(graph.get(module, ())):
                visit(imported, trail + (module,))
            done.add(module)

        for module in sorted(graph):
            visit(module, ())


if __name__ == "__main__":
    unittest.main()
