"""Install DuckDB's spatial extension from its PyPI wheel into DuckDB's extension folder, so
bqemulator finds it instead of downloading it. Run with the emulator venv's Python."""

from pathlib import Path

import duckdb
import duckdb_extension_spatial

extension = next(Path(duckdb_extension_spatial.__file__).parent.rglob("spatial.duckdb_extension"))
con = duckdb.connect()
con.install_extension(str(extension))
con.load_extension("spatial")
print(f"spatial extension installed from {extension}")
